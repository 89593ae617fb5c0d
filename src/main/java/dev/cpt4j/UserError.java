package dev.cpt4j;

/**
 * A problem with the user's input (a file, a flag, a directory) that the user can fix. The CLI prints only its
 * message, as one line, and exits non-zero; messages say what was wrong, where, and how to fix it.
 */
public class UserError extends RuntimeException {
    public UserError(String message) {
        super(message);
    }

    public UserError(String message, Throwable cause) {
        super(message, cause);
    }
}
