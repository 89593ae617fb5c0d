package dev.cpt4j.io;

import dev.cpt4j.UserError;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;

/**
 * A {@code torch.save} file in the zip format torch has written since 1.6 ({@code pytorch_model.bin},
 * {@code adapter_model.bin}): {@code <archive>/data.pkl} (the pickled state dict, read by {@link TorchPickle}),
 * {@code <archive>/data/<key>} (one entry per storage, raw little-endian elements) and {@code <archive>/byteorder}.
 * The state dict's tensors become named tensors; nested dicts are flattened with dots. Strided views (storage
 * offset, strides, several tensors sharing one storage) are read element by element in row-major order.
 *
 * <p>Not supported: the legacy pre-1.6 format (a bare pickle stream or a tar), big-endian files.
 */
public final class TorchZip implements TensorSource {
    private static final int MAX_PICKLE_BYTES = 512 << 20;

    private final Path path;
    private final ZipFile zip;
    private final String prefix;
    private final Map<String, TorchPickle.TensorRef> tensors;
    private final Map<String, TensorInfo> infos = new LinkedHashMap<>();

    private TorchZip(Path path, ZipFile zip, String prefix, Map<String, TorchPickle.TensorRef> tensors) {
        this.path = path;
        this.zip = zip;
        this.prefix = prefix;
        this.tensors = tensors;
        for (var e : tensors.entrySet())
            infos.put(e.getKey(), new TensorInfo(e.getKey(), e.getValue().storage().dtype(), e.getValue().size()));
    }

    /** Opens {@code file}, checks its format and reads its tensor table (not the tensor data). */
    public static TorchZip open(Path file) {
        byte[] head = new byte[512];
        int n;
        try (InputStream in = Files.newInputStream(file)) {
            n = in.readNBytes(head, 0, head.length);
        } catch (NoSuchFileException e) {
            throw new UserError(file + ": file not found; check the path");
        } catch (IOException e) {
            throw new UserError(file + ": cannot read (" + e.getMessage() + ")", e);
        }
        boolean zipMagic = n >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4;
        if (!zipMagic) {
            boolean pickle = n >= 2 && (head[0] & 0xFF) == 0x80;
            boolean tar = n >= 262 && new String(head, 257, 5, StandardCharsets.US_ASCII).equals("ustar");
            if (pickle || tar)
                throw new UserError(file + ": legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with"
                        + " torch>=1.6 (torch.save(torch.load(f), f)) or convert it to safetensors");
            throw new UserError(file + ": not a torch.save zip file (no zip signature); the file is corrupt or not a PyTorch checkpoint");
        }
        ZipFile zip;
        try {
            zip = new ZipFile(file.toFile());
        } catch (ZipException e) {
            throw new UserError(file + ": corrupt zip (" + e.getMessage() + "); the file is truncated or damaged — download or save it again");
        } catch (IOException e) {
            throw new UserError(file + ": cannot read (" + e.getMessage() + ")", e);
        }
        try {
            String prefix = null;
            for (var it = zip.entries().asIterator(); it.hasNext(); ) {
                String name = it.next().getName();
                int slash = name.indexOf('/');
                if (name.endsWith("/data.pkl") && slash == name.length() - "/data.pkl".length()) {
                    prefix = name.substring(0, slash + 1);
                    break;
                }
            }
            if (prefix == null)
                throw new UserError(file + ": zip file has no <archive>/data.pkl; it is not a torch.save checkpoint");
            ZipEntry bo = zip.getEntry(prefix + "byteorder");
            if (bo != null) {
                String order = new String(readAll(zip, bo, file, 64), StandardCharsets.US_ASCII).trim();
                if (!order.equals("little"))
                    throw new UserError(file + ": byteorder is '" + order + "'; only little-endian checkpoints are supported — re-save it on a little-endian machine");
            }
            ZipEntry pkl = zip.getEntry(prefix + "data.pkl");
            byte[] pickle = readAll(zip, pkl, file, MAX_PICKLE_BYTES);
            Object root = TorchPickle.load(pickle, file + " (" + prefix + "data.pkl)");
            Map<String, TorchPickle.TensorRef> tensors = new LinkedHashMap<>();
            if (!(root instanceof Map<?, ?> m))
                throw new UserError(file + ": the pickle holds a " + (root == null ? "None" : root.getClass().getSimpleName())
                        + ", not a state dict of tensors; save model.state_dict() instead of the model object");
            flatten("", m, tensors);
            TorchZip tz = new TorchZip(file, zip, prefix, tensors);
            for (var e : tensors.entrySet()) tz.checkStorage(e.getKey(), e.getValue());
            return tz;
        } catch (RuntimeException e) {
            closeQuietly(zip);
            throw e;
        }
    }

    private static void flatten(String pre, Map<?, ?> m, Map<String, TorchPickle.TensorRef> out) {
        for (var e : m.entrySet()) {
            if (!(e.getKey() instanceof String k)) continue;
            if (e.getValue() instanceof TorchPickle.TensorRef t) out.put(pre + k, t);
            else if (e.getValue() instanceof Map<?, ?> sub) flatten(pre + k + ".", sub, out);
            // Other values (step counters, strings) are not tensors: not ours to load.
        }
    }

    private void checkStorage(String name, TorchPickle.TensorRef t) {
        ZipEntry e = zip.getEntry(prefix + "data/" + t.storage().key());
        if (e == null)
            throw new UserError(path + ": tensor '" + name + "' refers to storage " + t.storage().key()
                    + ", which the zip does not contain; the file is truncated or damaged — download or save it again");
        long need = t.storage().numel() * t.storage().dtype().bytes();
        if (e.getSize() >= 0 && e.getSize() < need)
            throw new UserError(path + ": storage " + t.storage().key() + " of tensor '" + name + "' has " + e.getSize()
                    + " bytes, expected " + need + "; the file is truncated or damaged — download or save it again");
    }

    private static byte[] readAll(ZipFile zip, ZipEntry e, Path file, int max) {
        if (e.getSize() > max) throw new UserError(file + ": zip entry " + e.getName() + " is too large (" + e.getSize() + " bytes)");
        try (InputStream in = zip.getInputStream(e)) {
            byte[] b = in.readNBytes(max + 1);
            if (b.length > max) throw new UserError(file + ": zip entry " + e.getName() + " is too large");
            return b;
        } catch (ZipException ex) {
            throw new UserError(file + ": corrupt zip entry " + e.getName() + " (" + ex.getMessage() + "); download or save it again");
        } catch (IOException ex) {
            throw new UserError(file + ": cannot read zip entry " + e.getName() + " (" + ex.getMessage() + ")", ex);
        }
    }

    private static void closeQuietly(ZipFile z) {
        try {
            z.close();
        } catch (IOException ignored) {
            // closing a read-only file
        }
    }

    @Override
    public Path path() {
        return path;
    }

    @Override
    public List<String> names() {
        return List.copyOf(infos.keySet());
    }

    @Override
    public TensorInfo info(String name) {
        return infos.get(name);
    }

    /** The strided view behind {@code name} (storage key, offset, size, stride), or null. */
    public TorchPickle.TensorRef ref(String name) {
        return tensors.get(name);
    }

    @Override
    public void readFloats(String name, float[] dst, int dstOff) {
        TorchPickle.TensorRef t = tensors.get(name);
        if (t == null) throw new UserError(path + ": no tensor named '" + name + "' in this file");
        DType dt = t.storage().dtype();
        if (!dt.isFloating())
            throw new UserError(path + ": tensor '" + name + "' has dtype " + dt.torchName() + " but a floating-point tensor"
                    + " is expected here; the file does not hold what this model needs");
        long numel = t.numel();
        if (dstOff < 0 || numel > dst.length - (long) dstOff)
            throw new IllegalArgumentException(name + ": " + numel + " elements do not fit at offset " + dstOff + " of " + dst.length);
        if (numel == 0) return;
        ZipEntry e = zip.getEntry(prefix + "data/" + t.storage().key());
        int es = dt.bytes();
        try (InputStream in = zip.getInputStream(e)) {
            if (t.isContiguous()) {
                in.skipNBytes(t.offset() * es);
                byte[] buf = new byte[(int) Math.min(1 << 20, numel * es)];
                long done = 0;
                while (done < numel) {
                    int k = (int) Math.min(buf.length / es, numel - done);
                    in.readNBytes(buf, 0, k * es);
                    Safetensors.convert(MemorySegment.ofArray(buf), 0, dt, dst, (int) (dstOff + done), k);
                    done += k;
                }
            } else {
                long storageBytes = t.storage().numel() * es;
                if (storageBytes > Integer.MAX_VALUE - 16)
                    throw new UserError(path + ": strided tensor '" + name + "' lives in a storage over 2 GB; re-save it contiguous (tensor.contiguous())");
                byte[] all = in.readNBytes((int) storageBytes);
                MemorySegment seg = MemorySegment.ofArray(all);
                gather(t, seg, dt, dst, dstOff);
            }
        } catch (java.io.EOFException ex) {
            throw new UserError(path + ": storage of tensor '" + name + "' ends early; the file is truncated — download or save it again");
        } catch (IOException ex) {
            throw new UserError(path + ": cannot read tensor '" + name + "' (" + ex.getMessage() + "); the file may be damaged", ex);
        }
    }

    /** Copies a strided view to row-major order, one innermost run at a time. */
    private static void gather(TorchPickle.TensorRef t, MemorySegment seg, DType dt, float[] dst, int dstOff) {
        long[] size = t.size(), stride = t.stride();
        int rank = size.length;
        if (rank == 0) {
            Safetensors.convert(seg, t.offset() * dt.bytes(), dt, dst, dstOff, 1);
            return;
        }
        long[] idx = new long[rank];
        long inner = size[rank - 1], innerStride = stride[rank - 1];
        long outer = t.numel() / inner;
        int out = dstOff;
        float[] one = new float[1];
        for (long o = 0; o < outer; o++) {
            long base = t.offset();
            for (int d = 0; d < rank - 1; d++) base += idx[d] * stride[d];
            if (innerStride == 1) {
                Safetensors.convert(seg, base * dt.bytes(), dt, dst, out, (int) inner);
                out += (int) inner;
            } else {
                for (long i = 0; i < inner; i++) {
                    Safetensors.convert(seg, (base + i * innerStride) * dt.bytes(), dt, one, 0, 1);
                    dst[out++] = one[0];
                }
            }
            for (int d = rank - 2; d >= 0; d--) {  // odometer over the outer dimensions
                if (++idx[d] < size[d]) break;
                idx[d] = 0;
            }
        }
    }

    @Override
    public void close() {
        closeQuietly(zip);
    }

    @Override
    public String toString() {
        return "TorchZip[" + path + ", " + tensors.size() + " tensors]";
    }
}
