package dev.cpt4j.cli;

import dev.cpt4j.UserError;
import dev.cpt4j.tensor.cpu.Backend;
import picocli.CommandLine.Option;

/**
 * {@code --backend auto|java|native} for the commands that compute (train, eval, generate, bench): validated once and
 * made the process's choice through {@value Backend#PROPERTY}, which every {@code new Gemm(par)} reads.
 */
final class BackendOption {
    @Option(names = "--backend", paramLabel = "auto|java|native",
            description = "GEMM backend: native (OpenBLAS, bundled for Linux x86-64), java (Vector API kernels) or auto "
                    + "(native when it loads) (default: auto).")
    String backend;

    /** Checks the choice (one line and a non-zero exit when native cannot load) and applies it to this process. */
    void apply() {
        if (backend == null) return;                      // keep -Dcpt4j.backend, or auto
        Backend b;
        try {
            b = Backend.parse(backend);
            b.resolvesToNative();
        } catch (IllegalArgumentException | IllegalStateException e) {
            throw new UserError(e.getMessage().startsWith("--backend") ? e.getMessage() : "--backend: " + e.getMessage());
        }
        System.setProperty(Backend.PROPERTY, b.toString());
    }
}
