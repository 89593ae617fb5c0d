package dev.cpt4j.tensor.cpu;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;

/**
 * Shared objects bundled in {@code org.bytedeco} platform jars ({@code org/bytedeco/<name>/<platform>/}), copied once
 * into {@code <java.io.tmpdir>/cpt4j-native-<user>/<name>-<version>-<platform>/} so the FFM API can open them
 * ({@link OpenBlas}, {@link Dnnl}). Each file is written to a temporary name and moved into place, so concurrent JVMs
 * never see half a file; a copy of the right size is reused.
 */
final class NativeLibs {
    private NativeLibs() {}

    /** bytedeco's platform name for this JVM: {@code linux-x86_64}, {@code linux-arm64}; null where none is bundled. */
    static String platform() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = switch (System.getProperty("os.arch", "")) {
            case "amd64", "x86_64" -> "x86_64";
            case "aarch64", "arm64" -> "arm64";
            default -> null;
        };
        return os.startsWith("linux") && arch != null ? "linux-" + arch : null;
    }

    /**
     * Copies the libraries of artifact {@code org.bytedeco:<name>} for this platform to the cache directory (once)
     * and returns those present, in the order given (dependencies first); a missing {@code required} one is an error.
     */
    static List<Path> extract(String name, List<String> libraries, String required) throws IOException {
        String platform = platform();
        if (platform == null)
            throw new IOException("no bundled " + name + " for " + System.getProperty("os.name") + " " + System.getProperty("os.arch"));
        ClassLoader cl = NativeLibs.class.getClassLoader();
        String dir = "org/bytedeco/" + name + "/" + platform + "/";
        if (cl.getResource(dir + required) == null)
            throw new IOException("org.bytedeco:" + name + ":" + platform + " is not on the class path");
        String version = "unknown";
        try (InputStream in = cl.getResourceAsStream("META-INF/maven/org.bytedeco/" + name + "/pom.properties")) {
            if (in != null) {
                Properties p = new Properties();
                p.load(in);
                version = p.getProperty("version", version);
            }
        }
        Path target = Path.of(System.getProperty("java.io.tmpdir"), "cpt4j-native-" + System.getProperty("user.name", "user"),
                name + "-" + version + "-" + platform);
        Files.createDirectories(target);
        List<Path> out = new ArrayList<>();
        for (String lib : libraries) {
            var url = cl.getResource(dir + lib);
            if (url == null) continue;                       // e.g. no libquadmath on arm64
            Path file = target.resolve(lib);
            long size = url.openConnection().getContentLengthLong();
            if (!Files.isRegularFile(file) || Files.size(file) != size) {
                Path tmp = Files.createTempFile(target, lib, ".part");
                try (InputStream in = url.openStream()) {
                    Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
                }
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            }
            out.add(file);
        }
        return out;
    }
}
