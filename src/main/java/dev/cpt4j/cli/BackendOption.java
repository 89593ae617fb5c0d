package dev.cpt4j.cli;

import dev.cpt4j.UserError;
import dev.cpt4j.tensor.cpu.Backend;
import dev.cpt4j.tensor.cpu.Bf16;
import java.util.List;
import picocli.CommandLine.Option;

/**
 * {@code --backend auto|java|native} and {@code --bf16} / {@code --bf16-emulated} for the commands that compute
 * (train, eval, generate, bench): validated once and made the process's choice through {@value Backend#PROPERTY} and
 * {@value Bf16#PROPERTY}, which every {@code new Gemm(par)} reads.
 */
final class BackendOption {
    @Option(names = "--backend", paramLabel = "auto|java|native",
            description = "GEMM backend: native (OpenBLAS, bundled for Linux x86-64), java (Vector API kernels) or auto "
                    + "(native when it loads) (default: auto).")
    String backend;

    @Option(names = "--bf16", arity = "0..1", fallbackValue = "true", paramLabel = "BOOL",
            description = "Matmuls in bf16 as torch's CPU autocast (transformers' --bf16): inputs rounded to bf16, fp32 "
                    + "accumulation, on oneDNN and the CPU's bf16 instructions; weights, optimizer, norms, softmax and loss "
                    + "stay fp32 (default: off).")
    boolean bf16;

    @Option(names = "--bf16-emulated", description = "The numbers of --bf16 on the fp32 kernels (inputs rounded to bf16), "
            + "for CPUs without bf16 instructions; no faster than fp32 (default: off).")
    boolean bf16Emulated;

    /** Checks the choices (one line and a non-zero exit when one cannot be met) and applies them to this process. */
    void apply() {
        Backend b = null;
        if (backend != null) {
            try {
                b = Backend.parse(backend);
                b.resolvesToNative();
            } catch (IllegalArgumentException | IllegalStateException e) {
                throw new UserError(e.getMessage().startsWith("--backend") ? e.getMessage() : "--backend: " + e.getMessage());
            }
            System.setProperty(Backend.PROPERTY, b.toString());  // else keep -Dcpt4j.backend, or auto
        }
        if (bf16 && bf16Emulated) throw new UserError("--bf16 and --bf16-emulated exclude each other; pass one");
        if (bf16Emulated) System.setProperty(Bf16.PROPERTY, Bf16.Mode.EMULATED.toString());
        if (!bf16) return;
        if (b == Backend.JAVA)
            throw new UserError("--bf16 computes on oneDNN, which --backend java excludes; use --bf16-emulated for the Java kernels, or --backend auto");
        List<String> isa = Bf16.cpuInstructions();
        if (isa.isEmpty())
            throw new UserError("--bf16: this CPU has no bf16 instructions (no avx512_bf16 or amx_bf16), so bf16 matmuls would be "
                    + "emulated and slower than fp32; drop --bf16 (fp32 is the fast path here), or pass --bf16-emulated for bf16 numbers anyway");
        String why = Bf16.nativeUnavailableReason();
        if (why != null) throw new UserError("--bf16: " + why + "; use --bf16-emulated (bf16 numbers on the fp32 kernels, slower) or drop --bf16");
        System.setProperty(Bf16.PROPERTY, Bf16.Mode.NATIVE.toString());
    }
}
