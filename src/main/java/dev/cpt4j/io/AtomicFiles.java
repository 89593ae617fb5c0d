package dev.cpt4j.io;

import dev.cpt4j.UserError;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.zip.CRC32C;

/**
 * The one helper for writing files so that a reader never sees half of one: write a temporary file in the same
 * directory, force it to disk, rename it into place (POSIX {@code rename(2)} is atomic within a file system). A crash,
 * {@code kill -9} or a full disk leaves either the old file or the new one, and a failed write removes its temporary
 * file. Also here: atomic moves of files and folders, directory sync, removal of a tree cpt4j made, and CRC32C of a
 * file (checkpoint manifests). Every writer in cpt4j goes through this class; it deliberately knows no file format.
 */
public final class AtomicFiles {
    private AtomicFiles() {}

    /** What writes the content; gets a channel onto the temporary file. */
    @FunctionalInterface
    public interface Writer {
        void write(WritableByteChannel ch) throws IOException;
    }

    /**
     * Sees every byte of a write on its way to the file. {@link #DIRECT} in production; tests substitute a channel
     * that fails the way a full disk does ({@code IOException: No space left on device}), since a small file system
     * cannot be mounted from a test.
     */
    @FunctionalInterface
    public interface Channels {
        Channels DIRECT = (dst, ch) -> ch;

        /** The channel the bytes of {@code dst} (its final name) go through. */
        WritableByteChannel wrap(Path dst, WritableByteChannel ch) throws IOException;
    }

    /** A write that failed, naming the file (its final name) and the cause as the OS gave it. */
    public static final class WriteFailed extends UserError {
        private final Path file;
        private final String reason;

        WriteFailed(Path file, IOException cause) {
            super(file + ": cannot write (" + AtomicFiles.reason(cause) + "); check that the directory is writable and the disk has space",
                    cause);
            this.file = file;
            this.reason = AtomicFiles.reason(cause);
        }

        public Path file() {
            return file;
        }

        /** The OS's words: "No space left on device", "Permission denied", … */
        public String reason() {
            return reason;
        }
    }

    /** The OS's reason for {@code e}, without the file names a {@link FileSystemException} repeats. */
    public static String reason(IOException e) {
        if (e instanceof FileSystemException f && f.getReason() != null) return f.getReason();
        if (e instanceof java.nio.file.NoSuchFileException) return "no such file or directory";
        if (e instanceof java.nio.file.AccessDeniedException) return "Permission denied";
        return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
    }

    /** Writes {@code dst} through {@code w}, then forces it to disk and renames it into place. */
    public static void write(Path dst, Writer w) {
        write(dst, w, Channels.DIRECT);
    }

    /** As {@link #write(Path, Writer)}, the bytes passing through {@code via}. */
    public static void write(Path dst, Writer w, Channels via) {
        Path abs = dst.toAbsolutePath();
        Path dir = abs.getParent();
        Path tmp = null;
        try {
            Files.createDirectories(dir);
            tmp = Files.createTempFile(dir, "." + abs.getFileName(), ".tmp");
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                w.write(via.wrap(abs, ch));
                ch.force(true);
            }
            publishable(tmp);
            try {
                Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
            }
            tmp = null;
        } catch (IOException e) {
            throw new WriteFailed(dst, e);
        } finally {
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);  // our own temporary file, never the user's
                } catch (IOException ignored) {
                    // best effort
                }
            }
        }
    }

    /** Writes {@code bytes} to {@code dst} atomically. */
    public static void write(Path dst, byte[] bytes) {
        write(dst, bytes, Channels.DIRECT);
    }

    /** Writes {@code bytes} to {@code dst} atomically, through {@code via}. */
    public static void write(Path dst, byte[] bytes, Channels via) {
        write(dst, ch -> writeFully(ch, ByteBuffer.wrap(bytes)), via);
    }

    /** Writes {@code text} as UTF-8 to {@code dst} atomically. */
    public static void writeString(Path dst, String text) {
        write(dst, text.getBytes(StandardCharsets.UTF_8));
    }

    /** Copies {@code src} to {@code dst} atomically (a reader of {@code dst} sees the old file or the whole copy). */
    public static void copy(Path src, Path dst) {
        write(dst, ch -> {
            try (InputStream in = Files.newInputStream(src)) {
                byte[] buf = new byte[1 << 16];
                for (int n; (n = in.read(buf)) > 0; ) writeFully(ch, ByteBuffer.wrap(buf, 0, n));
            }
        });
    }

    /** Writes all of {@code b} (a channel may take fewer bytes per call). */
    public static void writeFully(WritableByteChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) ch.write(b);
    }

    /** Renames {@code src} to {@code dst} atomically, replacing a file there (both in one directory tree). */
    public static void move(Path src, Path dst) throws IOException {
        Files.move(src, dst, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    /**
     * Renames the folder {@code src} to {@code dst} atomically (after {@link #publishable}); {@code dst} must not
     * exist. Refuses a file system that cannot rename atomically rather than copying half a folder.
     */
    public static void moveDir(Path src, Path dst) throws IOException {
        publishable(src);
        try {
            Files.move(src, dst, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            throw new IOException("the file system of " + dst.getParent() + " cannot rename atomically", e);
        }
    }

    /** Forces a directory's entries (a rename into it) to disk where the platform can; a no-op elsewhere. */
    public static void syncDir(Path dir) {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException | UnsupportedOperationException ignored) {
            // not every platform can sync a directory; the atomic rename still guarantees all-or-nothing
        }
    }

    /** Deletes a directory tree that cpt4j itself created (a build or temporary folder); absent is fine. */
    public static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) return;
        try (var walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }

    /** CRC32C (Castagnoli, as in iSCSI/ext4; hardware-accelerated by the JDK) of the whole file. */
    public static long crc32c(Path file) throws IOException {
        CRC32C crc = new CRC32C();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
            while (ch.read(buf) >= 0) {
                buf.flip();
                crc.update(buf);
                buf.clear();
            }
        }
        return crc.getValue();
    }

    /**
     * Gives a temporary file or directory the usual permissions (rw-r--r--, rwxr-xr-x) before it is renamed into
     * place: {@code createTempFile}/{@code createTempDirectory} make them private to the owner. No-op where the file
     * system has no POSIX permissions.
     */
    public static void publishable(Path p) {
        try {
            if (!Files.getFileStore(p).supportsFileAttributeView("posix")) return;
            Files.setPosixFilePermissions(p, java.nio.file.attribute.PosixFilePermissions.fromString(
                    Files.isDirectory(p) ? "rwxr-xr-x" : "rw-r--r--"));
        } catch (IOException | UnsupportedOperationException ignored) {
            // keep the default permissions
        }
    }
}
