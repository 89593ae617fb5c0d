package dev.cpt4j.data;

import dev.cpt4j.UserError;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.zip.GZIPInputStream;

/**
 * Streams one corpus file as chunks of whole lines (raw bytes, split only after a {@code '\n'}), so memory is bounded
 * by the chunk size and the longest line, never by the file. While reading it hashes the file's bytes as stored on
 * disk (SHA-256) and counts them (for progress). A UTF-8 byte-order mark at the start of the file is dropped.
 * Decoding and tokenizing happen later, on worker threads ({@link ChunkTokenizer}).
 */
final class ChunkReader implements AutoCloseable {
    /** Lines {@code data[start, end)}; the first is line {@code firstLine} (1-based) of the file. */
    record Chunk(byte[] data, int start, int end, long firstLine) {}

    private final CorpusSource source;
    private final int chunkBytes;
    private final CountingDigestStream raw;
    private final InputStream in;
    private byte[] buf;
    private int len;
    private boolean eof;
    private boolean atFileStart = true;
    private long nextLine = 1;

    ChunkReader(CorpusSource source, int chunkBytes) {
        this.source = source;
        this.chunkBytes = chunkBytes;
        try {
            this.raw = new CountingDigestStream(Files.newInputStream(source.path()));
            this.in = source.gzip() ? new GZIPInputStream(raw, 1 << 16) : raw;
        } catch (IOException e) {
            throw new UserError("cannot read " + source.name() + ": " + e.getMessage()
                    + (source.gzip() ? " (is it really gzip?)" : ""), e);
        }
        this.buf = new byte[chunkBytes];
    }

    /** The next chunk of whole lines, or null at the end of the file. */
    Chunk next() {
        while (true) {
            int nl = -1;
            if (!eof) {
                fill();
                if (atFileStart && len >= 3 && (buf[0] & 0xFF) == 0xEF && (buf[1] & 0xFF) == 0xBB && (buf[2] & 0xFF) == 0xBF) {
                    System.arraycopy(buf, 3, buf, 0, len - 3);
                    len -= 3;
                    atFileStart = false;
                    continue;
                }
                if (len >= 3 || eof) atFileStart = false;
                for (int i = len - 1; i >= 0; i--) {
                    if (buf[i] == '\n') {
                        nl = i;
                        break;
                    }
                }
                if (nl < 0 && !eof) {
                    // A line longer than the buffer: grow until it fits (bounded by the longest line).
                    buf = java.util.Arrays.copyOf(buf, buf.length * 2);
                    continue;
                }
            }
            if (len == 0) return null;
            int cut = eof ? len : nl + 1;
            byte[] data = buf;
            buf = new byte[Math.max(chunkBytes, len - cut)];
            System.arraycopy(data, cut, buf, 0, len - cut);
            len -= cut;
            Chunk c = new Chunk(data, 0, cut, nextLine);
            nextLine += countLines(data, 0, cut);
            return c;
        }
    }

    private void fill() {
        try {
            while (len < buf.length) {
                int n = in.read(buf, len, buf.length - len);
                if (n < 0) {
                    eof = true;
                    return;
                }
                len += n;
            }
        } catch (IOException e) {
            throw new UserError("cannot read " + source.name() + ": " + e.getMessage()
                    + (source.gzip() ? " (a damaged or truncated .gz file?)" : ""), e);
        }
    }

    private static long countLines(byte[] b, int from, int to) {
        long n = 0;
        for (int i = from; i < to; i++) if (b[i] == '\n') n++;
        if (to > from && b[to - 1] != '\n') n++;
        return n;
    }

    /** Bytes read from the file as stored (compressed bytes for .gz). */
    long rawBytesRead() {
        return raw.count;
    }

    /** SHA-256 of the whole file as stored; call after {@link #next()} returned null. */
    String sha256() {
        try {
            // Drain anything gzip left unread (trailer) so the hash covers the whole file.
            byte[] skip = new byte[1 << 16];
            while (raw.read(skip, 0, skip.length) >= 0) { /* hash the rest */ }
        } catch (IOException e) {
            throw new UserError("cannot read " + source.name() + ": " + e.getMessage(), e);
        }
        return HexFormat.of().formatHex(raw.digest.digest());
    }

    @Override
    public void close() {
        try {
            in.close();
        } catch (IOException ignored) {
            // read-only stream; nothing to recover
        }
    }

    /** SHA-256 of a file's bytes (used when size or mtime changed, to tell a touched file from an edited one). */
    static String sha256Of(java.nio.file.Path file) throws IOException {
        try (CountingDigestStream s = new CountingDigestStream(Files.newInputStream(file))) {
            byte[] b = new byte[1 << 16];
            while (s.read(b, 0, b.length) >= 0) { /* hash */ }
            return HexFormat.of().formatHex(s.digest.digest());
        }
    }

    private static final class CountingDigestStream extends FilterInputStream {
        final MessageDigest digest;
        long count;

        CountingDigestStream(InputStream in) {
            super(in);
            try {
                digest = MessageDigest.getInstance("SHA-256");
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException(e);
            }
        }

        @Override
        public int read() throws IOException {
            int b = in.read();
            if (b >= 0) {
                digest.update((byte) b);
                count++;
            }
            return b;
        }

        @Override
        public int read(byte[] b, int off, int n) throws IOException {
            int r = in.read(b, off, n);
            if (r > 0) {
                digest.update(b, off, r);
                count += r;
            }
            return r;
        }

        @Override
        public long skip(long n) throws IOException {
            byte[] tmp = new byte[(int) Math.min(n, 1 << 16)];
            int r = read(tmp, 0, tmp.length);
            return Math.max(r, 0);
        }
    }
}
