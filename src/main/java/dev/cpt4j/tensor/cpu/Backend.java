package dev.cpt4j.tensor.cpu;

import java.util.Locale;

/**
 * Which implementation {@link Gemm}'s fp32 products run on: {@code java} (the packed Vector API kernels, always
 * there), {@code native} (OpenBLAS's sgemm through the FFM API, {@link OpenBlas}) or {@code auto} (native when the
 * library loads, else java). A run picks it once, with {@code --backend} on the CLI, which sets the
 * {@value #PROPERTY} system property that {@link Gemm#Gemm(dev.cpt4j.tensor.Parallel)} reads, so every GEMM of the
 * process — training, eval, the decoders — is built the same way from one place.
 */
public enum Backend {
    AUTO, JAVA, NATIVE;

    /** The system property {@link Gemm} reads its backend from: {@code auto} (default), {@code java} or {@code native}. */
    public static final String PROPERTY = "cpt4j.backend";

    /** {@code auto}, {@code java} or {@code native}, any case; anything else is an {@link IllegalArgumentException}. */
    public static Backend parse(String name) {
        return switch (name.trim().toLowerCase(Locale.ROOT)) {
            case "auto" -> AUTO;
            case "java" -> JAVA;
            case "native" -> NATIVE;
            default -> throw new IllegalArgumentException("unknown backend '" + name + "'; use auto, java or native");
        };
    }

    /** The backend {@value #PROPERTY} names, {@link #AUTO} when it is not set. */
    public static Backend fromProperty() {
        String v = System.getProperty(PROPERTY);
        return v == null || v.isBlank() ? AUTO : parse(v);
    }

    /**
     * Whether this choice computes natively here: {@link #NATIVE} and {@link #AUTO} when the library loads.
     *
     * @throws IllegalStateException for {@link #NATIVE} when it does not load (the message says why)
     */
    public boolean resolvesToNative() {
        return switch (this) {
            case JAVA -> false;
            case AUTO -> OpenBlas.available();
            case NATIVE -> {
                if (!OpenBlas.available())
                    throw new IllegalStateException("--backend native: " + OpenBlas.loadError() + "; use --backend java (or auto)");
                yield true;
            }
        };
    }

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
