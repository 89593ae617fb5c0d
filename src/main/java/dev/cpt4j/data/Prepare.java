package dev.cpt4j.data;

import dev.cpt4j.UserError;
import dev.cpt4j.io.AtomicFiles;
import dev.cpt4j.io.DirLock;
import dev.cpt4j.tokenizer.Tokenizer;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Consumer;

/**
 * {@code cpt4j prepare}: corpus files → tokens → fixed-size blocks → a memory-mapped {@link TokenStore}, with the
 * seed's semantics ({@code run_clm_pt_with_peft.py}: {@code tokenize_function} + {@code group_texts} +
 * {@code train_test_split}) minus its flaws:
 * <ul>
 *   <li>every non-blank line is tokenized with special tokens and all ids are concatenated over the whole corpus in a
 *       stable file order, then cut into blocks; the remainder is dropped once, at the end of the corpus (the seed
 *       drops one per batch of 1000 lines and per file);</li>
 *   <li>the store is reused only when the tokenizer fingerprint, block size, split and every source file match its
 *       manifest (the seed keys its cache by file name only); otherwise it is rebuilt and the log says why;</li>
 *   <li>each file is tokenized into its own shard with a done-marker keyed by the file's content and the tokenizer,
 *       so a restart after a crash re-tokenizes only files that were not finished;</li>
 *   <li>files stream through a bounded pipeline (chunks of lines, tokenized on {@code workers} threads and written
 *       back in order), so memory does not grow with the corpus.</li>
 * </ul>
 * The store becomes visible atomically: token files are written in a build directory inside the output and renamed
 * into place, the manifest last; a directory without a matching manifest is never taken for a store.
 * It is not a tokenizer (it calls one) and does not know the model (callers pass the context limit).
 */
public final class Prepare {
    static final String MARKER = ".cpt4j-store";
    static final String BUILD_DIR = ".cpt4j-build";
    private static final Set<String> OWN_ENTRIES = Set.of(MARKER, BUILD_DIR, Manifest.FILE, Manifest.FILE + ".tmp",
            Manifest.TRAIN_FILE, Manifest.VALIDATION_FILE, Manifest.TRAIN_DOCS_FILE, Manifest.VALIDATION_DOCS_FILE);
    static final int DEFAULT_CHUNK_BYTES = 512 * 1024;

    private Prepare() {}

    /** Prepares (or reuses) the store described by {@code o} and opens it; messages go to {@code log}. */
    public static TokenStore run(PrepareOptions o, Tokenizer tokenizer, Consumer<String> log) {
        return run(o, tokenizer, log, PrepareProgress.none());
    }

    /** As {@link #run(PrepareOptions, Tokenizer, Consumer)}, reporting tokenization progress to {@code progress}. */
    public static TokenStore run(PrepareOptions o, Tokenizer tokenizer, Consumer<String> log, PrepareProgress progress) {
        return run(o, tokenizer, log, progress, DEFAULT_CHUNK_BYTES);
    }

    /**
     * Checks what can be checked without a tokenizer — the dataset exists and holds corpus files, the output is new,
     * empty or a cpt4j store — and returns the corpus files. Throws {@link UserError}; touches nothing.
     */
    public static List<CorpusSource> check(PrepareOptions o) {
        Path out = o.output().toAbsolutePath().normalize();
        for (Path d : o.dataset()) {
            if (d.toAbsolutePath().normalize().startsWith(out)) {
                throw new UserError("--output " + o.output() + " is or contains the dataset " + d
                        + "; pass --output with a new or empty directory");
            }
        }
        List<CorpusSource> sources = CorpusSource.find(o.dataset(), out);
        checkOutputDir(out);
        return sources;
    }

    /**
     * One rank's part of a preparation split over {@code ranks} processes (data-parallel training under mpirun):
     * tokenizes into the shared build folder the files assigned to {@code rank} — the corpus files dealt out by size,
     * largest first, each to the rank with the least bytes so far — that have no finished shard yet. Every rank calls
     * it; afterwards (once all have returned) one rank's {@link #run} finds every shard finished and only assembles the
     * store. Does nothing when the store is already valid for these inputs. Takes no lock: the ranks write different
     * files, and the assembling run holds the store's lock.
     */
    public static void tokenizeShare(PrepareOptions o, Tokenizer tokenizer, int rank, int ranks, Consumer<String> log) {
        Path out = o.output().toAbsolutePath().normalize();
        List<CorpusSource> sources = check(o);
        List<FileStat> stats = new ArrayList<>();
        for (CorpusSource s : sources) stats.add(FileStat.of(s));
        String fingerprint = tokenizer.fingerprint();
        Manifest old = TokenStore.readValid(out);
        if (old != null && differences(old, o, fingerprint, sources, stats).isEmpty()) return;
        long[] load = new long[ranks];
        Integer[] bySize = new Integer[sources.size()];
        for (int i = 0; i < bySize.length; i++) bySize[i] = i;
        java.util.Arrays.sort(bySize, (a, b) -> stats.get(a).size() != stats.get(b).size()
                ? Long.compare(stats.get(b).size(), stats.get(a).size()) : Integer.compare(a, b));
        List<Integer> mine = new ArrayList<>();
        for (int i : bySize) {
            int least = 0;
            for (int r = 1; r < ranks; r++) if (load[r] < load[least]) least = r;
            load[least] += stats.get(i).size();
            if (least == rank) mine.add(i);
        }
        log.accept("preparing " + out + ": " + sources.size() + " file" + (sources.size() == 1 ? "" : "s")
                + " dealt out over " + ranks + " ranks by size (" + mine.size() + " on rank " + rank + ")");
        try {
            Files.createDirectories(out);
            Path marker = out.resolve(MARKER);   // before the build folder, so no rank sees a folder without it
            if (!Files.exists(marker)) {
                Files.writeString(marker, "cpt4j token store: made by 'cpt4j prepare'; do not put other files here\n");
            }
            Build b = new Build(o, tokenizer, fingerprint, TokenDtype.forVocab(tokenizer.vocabSize()), sources, stats,
                    out, log, PrepareProgress.none(), DEFAULT_CHUNK_BYTES);
            b.tokenizeOnly(mine);
        } catch (IOException e) {
            throw new UncheckedIOException("preparing " + out + ": " + e.getMessage(), e);
        }
    }

    static TokenStore run(PrepareOptions o, Tokenizer tokenizer, Consumer<String> log, PrepareProgress progress,
                          int chunkBytes) {
        Path out = o.output().toAbsolutePath().normalize();
        List<CorpusSource> sources = check(o);
        List<FileStat> stats = new ArrayList<>();
        for (CorpusSource s : sources) stats.add(FileStat.of(s));
        String fingerprint = tokenizer.fingerprint();
        TokenDtype dtype = TokenDtype.forVocab(tokenizer.vocabSize());

        Manifest old = TokenStore.readValid(out);
        if (old != null) {
            List<String> reasons = differences(old, o, fingerprint, sources, stats);
            if (reasons.isEmpty()) {
                refreshMtimes(out, old, stats);
                log.accept("using prepared data in " + out + " (" + summary(old) + ")");
                return TokenStore.open(out);
            }
            log.accept("rebuilding " + out + ": " + String.join(", ", reasons));
        } else if (Files.isDirectory(out.resolve(BUILD_DIR))) {
            log.accept("resuming the unfinished preparation in " + out);
        } else {
            log.accept("preparing " + out + " from " + sources.size() + " file" + (sources.size() == 1 ? "" : "s"));
        }

        try {
            Files.createDirectories(out);
            Path marker = out.resolve(MARKER);
            if (!Files.exists(marker)) {
                Files.writeString(marker, "cpt4j token store: made by 'cpt4j prepare'; do not put other files here\n");
            }
            try (DirLock lock = DirLock.tryAcquire(marker, null)) {
                if (lock == null) {
                    throw new UserError("another 'cpt4j prepare' is writing " + out + "; wait for it or use another --output");
                }
                Build b = new Build(o, tokenizer, fingerprint, dtype, sources, stats, out, log, progress, chunkBytes);
                b.run();
            }
        } catch (IOException e) {
            throw new UncheckedIOException("preparing " + out + ": " + e.getMessage(), e);
        }
        return TokenStore.open(out);
    }

    /**
     * Files touched but unchanged (same content hash) keep the store; record their new mtimes so the next run does not
     * hash them again. Best effort: the store stays valid if this fails.
     */
    private static void refreshMtimes(Path out, Manifest m, List<FileStat> stats) {
        List<Manifest.Source> srcs = new ArrayList<>();
        boolean changed = false;
        for (int i = 0; i < stats.size(); i++) {
            Manifest.Source s = m.sources().get(i);
            long mt = stats.get(i).mtimeMillis();
            changed |= mt != s.mtimeMillis();
            srcs.add(new Manifest.Source(s.path(), s.name(), s.size(), mt, s.sha256(), s.lines(), s.tokens(), s.skippedLines()));
        }
        if (!changed) return;
        Manifest updated = new Manifest(m.format(), m.formatVersion(), m.tokenizerFingerprint(), m.vocabSize(), m.blockSize(),
                m.dtype(), m.validationFraction(), m.seed(), m.skipInvalidLines(), srcs, m.counts(), m.documentStarts());
        try (DirLock lock = DirLock.tryAcquire(out.resolve(MARKER), null)) {
            if (lock != null) updated.write(out.resolve(Manifest.FILE));
        } catch (IOException | RuntimeException e) {
            // read-only output or a concurrent writer: the content hash will simply be checked again next time
        }
    }

    /** Refuses (one line, nothing touched) an output that exists and is not empty, nor a cpt4j store. */
    static void checkOutputDir(Path out) {
        if (!Files.exists(out)) return;
        if (!Files.isDirectory(out)) {
            throw new UserError("output " + out + " is a file; pass --output with a new or empty directory");
        }
        List<String> names;
        try (var list = Files.list(out)) {
            names = list.map(p -> p.getFileName().toString()).sorted().toList();
        } catch (IOException e) {
            throw new UserError("cannot read output directory " + out + ": " + e.getMessage(), e);
        }
        if (names.isEmpty()) return;
        List<String> foreign = names.stream().filter(n -> !OWN_ENTRIES.contains(n)).toList();
        if (!names.contains(MARKER) || !foreign.isEmpty()) {
            String example = foreign.isEmpty() ? names.getFirst() : foreign.getFirst();
            throw new UserError("output directory " + out + " holds files that are not a cpt4j token store (e.g. "
                    + example + "); pass --output with a new or empty directory");
        }
    }

    /** Why a store with manifest {@code m} cannot be reused for these inputs; empty if it can. */
    static List<String> differences(Manifest m, PrepareOptions o, String fingerprint, List<CorpusSource> sources,
                                    List<FileStat> stats) {
        List<String> r = new ArrayList<>();
        if (!m.tokenizerFingerprint().equals(fingerprint)) r.add("tokenizer changed");
        if (m.blockSize() != o.blockSize()) r.add("block size " + m.blockSize() + " → " + o.blockSize());
        if (m.validationFraction() != o.validationFraction()) {
            r.add("validation split " + m.validationFraction() + " → " + o.validationFraction());
        }
        if (m.seed() != o.seed()) r.add("seed " + m.seed() + " → " + o.seed());
        if (o.documentStarts() && !m.documentStarts())
            r.add("document boundaries not recorded (prepared by an older cpt4j; --neat_packing needs them)");
        if (m.skipInvalidLines() != o.skipInvalidLines()) {
            r.add("--skip-invalid-lines " + (o.skipInvalidLines() ? "turned on" : "turned off"));
        }
        Map<String, Manifest.Source> before = new HashMap<>();
        for (Manifest.Source s : m.sources()) before.put(s.path(), s);
        List<String> files = new ArrayList<>();
        Set<String> now = new HashSet<>();
        for (int i = 0; i < sources.size(); i++) {
            CorpusSource s = sources.get(i);
            String p = s.path().toString();
            now.add(p);
            Manifest.Source prev = before.get(p);
            if (prev == null) files.add("file " + s.name() + " added");
            else if (!stats.get(i).sameContent(prev.size(), prev.mtimeMillis(), prev.sha256())) files.add("file " + s.name() + " changed");
        }
        for (Manifest.Source s : m.sources()) if (!now.contains(s.path())) files.add("file " + s.name() + " removed");
        if (files.isEmpty() && !m.sources().stream().map(Manifest.Source::path).toList()
                .equals(sources.stream().map(s -> s.path().toString()).toList())) {
            files.add("file order changed");
        }
        if (files.size() > 3) r.add(files.size() + " files added, changed or removed (" + files.getFirst() + ", ...)");
        else r.addAll(files);
        return r;
    }

    static String summary(Manifest m) {
        Manifest.Counts c = m.counts();
        return String.format("%,d lines, %,d tokens → %,d blocks of %d: %,d train, %,d validation; %,d tokens dropped",
                c.lines(), c.tokens(), c.blocks(), m.blockSize(), c.trainBlocks(), c.validationBlocks(), c.droppedTokens());
    }

    /** Size and mtime of a source now; hashes lazily (only when size matches but mtime does not). */
    record FileStat(Path path, long size, long mtimeMillis) {
        static FileStat of(CorpusSource s) {
            try {
                return new FileStat(s.path(), Files.size(s.path()), Files.getLastModifiedTime(s.path()).toMillis());
            } catch (IOException e) {
                throw new UserError("cannot read " + s.name() + ": " + e.getMessage(), e);
            }
        }

        /**
         * True when the file still has the recorded content: same size and mtime, or (mtime changed, e.g. touched or
         * copied) same SHA-256.
         */
        boolean sameContent(long size, long mtime, String sha256) {
            if (size != this.size) return false;
            if (mtime == this.mtimeMillis) return true;
            try {
                return ChunkReader.sha256Of(path).equals(sha256);
            } catch (IOException e) {
                throw new UserError("cannot read " + path + ": " + e.getMessage(), e);
            }
        }
    }

    /**
     * The small done-marker beside each finished shard: which file (and content) and which tokenizer produced it.
     */
    record ShardMarker(int formatVersion, String path, long size, long mtimeMillis, String sha256,
                       String tokenizerFingerprint, String dtype, boolean skipInvalidLines, long lines, long tokens,
                       long skippedLines, long firstSkippedLine, long documents) {}

    /** One build: shards (reused or tokenized) → train/validation files → manifest, then the swap. */
    private static final class Build {
        private final PrepareOptions o;
        private final Tokenizer tokenizer;
        private final String fingerprint;
        private final TokenDtype dtype;
        private final List<CorpusSource> sources;
        private final List<FileStat> stats;
        private final Path out;
        private final Path build;
        private final Path shardDir;
        private final Consumer<String> log;
        private final PrepareProgress progress;
        private final int chunkBytes;
        private final ShardMarker[] done;

        Build(PrepareOptions o, Tokenizer tokenizer, String fingerprint, TokenDtype dtype, List<CorpusSource> sources,
              List<FileStat> stats, Path out, Consumer<String> log, PrepareProgress progress, int chunkBytes) {
            this.o = o;
            this.tokenizer = tokenizer;
            this.fingerprint = fingerprint;
            this.dtype = dtype;
            this.sources = sources;
            this.stats = stats;
            this.out = out;
            this.build = out.resolve(BUILD_DIR);
            this.shardDir = build.resolve("shards");
            this.log = log;
            this.progress = progress;
            this.chunkBytes = chunkBytes;
            this.done = new ShardMarker[sources.size()];
        }

        void run() throws IOException {
            Files.createDirectories(shardDir);
            long t0 = System.nanoTime();
            List<Integer> todo = new ArrayList<>();
            Set<String> keep = new HashSet<>();
            for (int i = 0; i < sources.size(); i++) {
                String key = shardKey(sources.get(i));
                keep.add(key + ".tok");
                keep.add(key + ".done.json");
                keep.add(key + ".docs");
                done[i] = reusableShard(i, key);
                if (done[i] == null) todo.add(i);
            }
            try (var list = Files.list(shardDir)) {
                // Shards of files no longer in the corpus, partial shards: ours, and useless now.
                for (Path p : list.toList()) if (!keep.contains(p.getFileName().toString())) Files.delete(p);
            }
            if (todo.size() < sources.size()) {
                log.accept("reusing the tokens of " + (sources.size() - todo.size()) + " of " + sources.size()
                        + " files finished earlier");
            }
            tokenize(todo);
            for (int i = 0; i < sources.size(); i++) {
                ShardMarker m = done[i];
                if (m.skippedLines() > 0) {
                    log.accept("skipped " + m.skippedLines() + " invalid line" + (m.skippedLines() == 1 ? "" : "s")
                            + " in " + sources.get(i).name() + " (first at line " + m.firstSkippedLine() + ")");
                }
            }
            Manifest manifest = assemble();
            swap(manifest);
            double s = (System.nanoTime() - t0) / 1e9;
            log.accept(String.format("prepared %s in %.1f s (%,.0f tokens/s): %s", out, s,
                    manifest.counts().tokens() / Math.max(s, 1e-9), summary(manifest)));
        }

        /** Tokenizes those of the files {@code indices} that have no finished shard; deletes nothing. */
        void tokenizeOnly(List<Integer> indices) throws IOException {
            Files.createDirectories(shardDir);
            List<Integer> todo = new ArrayList<>();
            for (int i : indices) {
                done[i] = reusableShard(i, shardKey(sources.get(i)));
                if (done[i] == null) todo.add(i);
            }
            tokenize(todo);
        }

        private ShardMarker reusableShard(int i, String key) {
            Path markerFile = shardDir.resolve(key + ".done.json");
            Path shard = shardDir.resolve(key + ".tok"), docs = shardDir.resolve(key + ".docs");
            if (!Files.isRegularFile(markerFile) || !Files.isRegularFile(shard) || !Files.isRegularFile(docs)) return null;
            try {
                ShardMarker m = Manifest.JSON.readValue(markerFile.toFile(), ShardMarker.class);
                boolean ok = m.formatVersion() == Manifest.VERSION
                        && m.path().equals(sources.get(i).path().toString())
                        && m.tokenizerFingerprint().equals(fingerprint)
                        && m.dtype().equals(dtype.id())
                        && m.skipInvalidLines() == o.skipInvalidLines()
                        && Files.size(shard) == m.tokens() * dtype.bytes()
                        && m.documents() == m.lines() && Files.size(docs) == 4 * m.documents()
                        && stats.get(i).sameContent(m.size(), m.mtimeMillis(), m.sha256());
                return ok ? m : null;
            } catch (IOException | RuntimeException e) {
                return null; // unreadable marker: tokenize the file again
            }
        }

        private static String shardKey(CorpusSource s) {
            try {
                byte[] h = MessageDigest.getInstance("SHA-256").digest(s.path().toString().getBytes(StandardCharsets.UTF_8));
                return HexFormat.of().formatHex(h, 0, 10);
            } catch (java.security.NoSuchAlgorithmException e) {
                throw new IllegalStateException(e);
            }
        }

        /** One entry of the in-order pipeline: a tokenized chunk, or the end of a file. */
        private record Pending(Future<ChunkTokenizer.Result> chunk, long rawBytes, ShardWriter shard, String sha256) {}

        private void tokenize(List<Integer> todo) throws IOException {
            if (todo.isEmpty()) return;
            long total = 0;
            for (int i : todo) total += stats.get(i).size();
            ChunkTokenizer ct = new ChunkTokenizer(tokenizer, dtype, o.skipInvalidLines());
            ExecutorService pool = Executors.newFixedThreadPool(o.workers(), r -> {
                Thread t = new Thread(r, "cpt4j-tokenize");
                t.setDaemon(true);
                return t;
            });
            // Bounded look-ahead: enough chunks to keep every worker busy while the oldest is written.
            int maxInFlight = 2 * o.workers() + 2;
            ArrayDeque<Pending> inFlight = new ArrayDeque<>();
            Progress p = new Progress();
            progress.start(total);
            try {
                for (int i : todo) {
                    CorpusSource src = sources.get(i);
                    ShardWriter w = new ShardWriter(i, shardDir.resolve(shardKey(src) + ".tok"));
                    try (ChunkReader r = new ChunkReader(src, chunkBytes)) {
                        long seen = 0;
                        ChunkReader.Chunk c;
                        while ((c = r.next()) != null) {
                            ChunkReader.Chunk chunk = c;
                            long raw = r.rawBytesRead();
                            inFlight.add(new Pending(pool.submit(() -> ct.tokenize(src, chunk)), raw - seen, w, null));
                            seen = raw;
                            while (inFlight.size() > maxInFlight) drain(inFlight.poll(), p);
                        }
                        String sha = r.sha256();
                        inFlight.add(new Pending(null, r.rawBytesRead() - seen, w, sha));
                    }
                }
                while (!inFlight.isEmpty()) drain(inFlight.poll(), p);
            } catch (RuntimeException | IOException e) {
                for (Pending q : inFlight) {
                    if (q.chunk() != null) q.chunk().cancel(true);
                    q.shard().abandon();
                }
                throw e;
            } finally {
                pool.shutdownNow();
                progress.close();
            }
        }

        private final class Progress {
            long bytes, lines, tokens;
        }

        private void drain(Pending q, Progress p) throws IOException {
            p.bytes += q.rawBytes();
            if (q.chunk() != null) {
                ChunkTokenizer.Result r;
                try {
                    r = q.chunk().get();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted", e);
                } catch (ExecutionException e) {
                    if (e.getCause() instanceof RuntimeException re) throw re;
                    if (e.getCause() instanceof Error er) throw er;
                    throw new IllegalStateException(e.getCause());
                }
                q.shard().write(r);
                p.lines += r.lines();
                p.tokens += r.tokens();
            } else {
                q.shard().finish(q.sha256());
            }
            progress.update(p.bytes, p.lines, p.tokens);
        }

        /** Writes one file's tokens to {@code <key>.tok.partial}; on finish renames it and writes the done-marker. */
        private final class ShardWriter {
            private final int index;
            private final Path file;
            private final Path partial;
            private final Path docsFile, docsPartial; // u32 little-endian token count of each document
            private FileChannel channel, docsChannel;
            private OutputStream os, docsOs;
            private long lines, tokens, skipped, firstSkipped, documents;

            ShardWriter(int index, Path file) {
                this.index = index;
                this.file = file;
                this.partial = file.resolveSibling(file.getFileName() + ".partial");
                this.docsFile = file.resolveSibling(file.getFileName().toString().replace(".tok", ".docs"));
                this.docsPartial = docsFile.resolveSibling(docsFile.getFileName() + ".partial");
            }

            void write(ChunkTokenizer.Result r) throws IOException {
                if (os == null) {
                    channel = FileChannel.open(partial, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                            StandardOpenOption.TRUNCATE_EXISTING);
                    os = new BufferedOutputStream(Channels.newOutputStream(channel), 1 << 20);
                    docsChannel = FileChannel.open(docsPartial, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                            StandardOpenOption.TRUNCATE_EXISTING);
                    docsOs = new BufferedOutputStream(Channels.newOutputStream(docsChannel), 1 << 16);
                }
                os.write(r.tokenBytes(), 0, r.length());
                for (int n : r.docLengths()) {
                    docsOs.write(n);
                    docsOs.write(n >>> 8);
                    docsOs.write(n >>> 16);
                    docsOs.write(n >>> 24);
                }
                documents += r.docLengths().length;
                lines += r.lines();
                tokens += r.tokens();
                if (r.skipped() > 0 && skipped == 0) firstSkipped = r.firstSkippedLine();
                skipped += r.skipped();
            }

            void finish(String sha256) throws IOException {
                if (os == null) {
                    Files.write(partial, new byte[0]); // an empty file (or only blank lines)
                    Files.write(docsPartial, new byte[0]);
                } else {
                    os.flush();
                    channel.force(true);
                    os.close();
                    os = null;
                    docsOs.flush();
                    docsChannel.force(true);
                    docsOs.close();
                    docsOs = null;
                }
                AtomicFiles.move(docsPartial, docsFile);
                AtomicFiles.move(partial, file);
                FileStat st = stats.get(index);
                ShardMarker m = new ShardMarker(Manifest.VERSION, sources.get(index).path().toString(), st.size(),
                        st.mtimeMillis(), sha256, fingerprint, dtype.id(), o.skipInvalidLines(), lines, tokens, skipped,
                        firstSkipped, documents);
                AtomicFiles.writeString(file.resolveSibling(file.getFileName().toString().replace(".tok", ".done.json")),
                        Manifest.JSON.writeValueAsString(m));
                done[index] = m;
            }

            void abandon() {
                try {
                    if (os != null) os.close();
                    if (docsOs != null) docsOs.close();
                } catch (IOException ignored) {
                    // the partial shard is rewritten on the next run
                }
                os = null;
                docsOs = null;
            }
        }

        private Manifest assemble() throws IOException {
            int T = o.blockSize();
            long lines = 0, tokens = 0, skipped = 0;
            List<Manifest.Source> srcs = new ArrayList<>();
            for (int i = 0; i < sources.size(); i++) {
                ShardMarker m = done[i];
                lines += m.lines();
                tokens += m.tokens();
                skipped += m.skippedLines();
                srcs.add(new Manifest.Source(m.path(), sources.get(i).name(), m.size(), m.mtimeMillis(), m.sha256(),
                        m.lines(), m.tokens(), m.skippedLines()));
            }
            long blocks = tokens / T;
            if (blocks == 0) {
                throw new UserError("the corpus has only " + tokens + " tokens, fewer than one block of " + T
                        + "; add text or pass a smaller --block_size");
            }
            long nVal = ValidationSplit.count(blocks, o.validationFraction());
            BitSet val = ValidationSplit.choose(blocks, nVal, o.seed());
            int blockBytes = T * dtype.bytes(), docBytes = Manifest.docBytes(T);
            byte[] block = new byte[blockBytes]; // (T) tokens in dtype
            byte[] starts = new byte[docBytes];  // (⌈T/8⌉) bit t: token t starts a document
            try (InputStream in = new ConcatInputStream(shardFiles(".tok"));
                 DataInputStreamLE docs = new DataInputStreamLE(new ConcatInputStream(shardFiles(".docs")));
                 FileChannel trCh = create(build.resolve(Manifest.TRAIN_FILE));
                 FileChannel vaCh = create(build.resolve(Manifest.VALIDATION_FILE));
                 FileChannel trDocCh = create(build.resolve(Manifest.TRAIN_DOCS_FILE));
                 FileChannel vaDocCh = create(build.resolve(Manifest.VALIDATION_DOCS_FILE))) {
                OutputStream tr = new BufferedOutputStream(Channels.newOutputStream(trCh), 1 << 20);
                OutputStream va = new BufferedOutputStream(Channels.newOutputStream(vaCh), 1 << 20);
                OutputStream trDoc = new BufferedOutputStream(Channels.newOutputStream(trDocCh), 1 << 16);
                OutputStream vaDoc = new BufferedOutputStream(Channels.newOutputStream(vaDocCh), 1 << 16);
                long left = 0; // tokens of the current document not yet placed
                for (long b = 0; b < blocks; b++) {
                    if (in.readNBytes(block, 0, blockBytes) != blockBytes) {
                        throw new IllegalStateException("token shards in " + shardDir + " are shorter than their markers say");
                    }
                    java.util.Arrays.fill(starts, (byte) 0);
                    for (int t = 0; t < T; t++) {
                        if (left == 0) { // token t starts the next document (one that gave no token starts nothing)
                            do left = docs.readU32(); while (left == 0);
                            starts[t >>> 3] |= (byte) (1 << (t & 7));
                        }
                        left--;
                    }
                    boolean v = val.get((int) b);
                    (v ? va : tr).write(block);
                    (v ? vaDoc : trDoc).write(starts);
                }
                for (OutputStream os : List.of(tr, va, trDoc, vaDoc)) os.flush();
                for (FileChannel ch : List.of(trCh, vaCh, trDocCh, vaDocCh)) ch.force(true);
            }
            Manifest.Counts counts = new Manifest.Counts(lines, tokens, blocks, blocks - nVal, nVal, tokens - blocks * T, skipped);
            return new Manifest(Manifest.FORMAT, Manifest.VERSION, fingerprint, tokenizer.vocabSize(), T, dtype.id(),
                    o.validationFraction(), o.seed(), o.skipInvalidLines(), srcs, counts, true);
        }

        private List<Path> shardFiles(String suffix) {
            List<Path> files = new ArrayList<>();
            for (CorpusSource s : sources) files.add(shardDir.resolve(shardKey(s) + suffix));
            return files;
        }

        private static FileChannel create(Path p) throws IOException {
            return FileChannel.open(p, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING);
        }

        /** Old manifest out first (the old store is invalid from here on), token files in, new manifest last. */
        private void swap(Manifest manifest) throws IOException {
            Path mf = build.resolve(Manifest.FILE);
            manifest.write(mf);
            Files.deleteIfExists(out.resolve(Manifest.FILE));
            AtomicFiles.move(build.resolve(Manifest.TRAIN_FILE), out.resolve(Manifest.TRAIN_FILE));
            AtomicFiles.move(build.resolve(Manifest.VALIDATION_FILE), out.resolve(Manifest.VALIDATION_FILE));
            AtomicFiles.move(build.resolve(Manifest.TRAIN_DOCS_FILE), out.resolve(Manifest.TRAIN_DOCS_FILE));
            AtomicFiles.move(build.resolve(Manifest.VALIDATION_DOCS_FILE), out.resolve(Manifest.VALIDATION_DOCS_FILE));
            AtomicFiles.move(mf, out.resolve(Manifest.FILE));
            AtomicFiles.deleteTree(build);
        }
    }

    /** Little-endian u32 values from a stream (the shards' document lengths). */
    private static final class DataInputStreamLE implements AutoCloseable {
        private final InputStream in;
        private final byte[] b = new byte[4];

        DataInputStreamLE(InputStream in) {
            this.in = new BufferedInputStream(in, 1 << 16);
        }

        long readU32() throws IOException {
            if (in.readNBytes(b, 0, 4) != 4)
                throw new IllegalStateException("document lengths of the token shards end before their tokens do");
            return (b[0] & 0xFFL) | (b[1] & 0xFFL) << 8 | (b[2] & 0xFFL) << 16 | (b[3] & 0xFFL) << 24;
        }

        @Override
        public void close() throws IOException {
            in.close();
        }
    }

    /** Reads files one after another, opening each only when the previous one is exhausted. */
    private static final class ConcatInputStream extends InputStream {
        private final List<Path> files;
        private int next;
        private InputStream cur;

        ConcatInputStream(List<Path> files) {
            this.files = files;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xFF;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            while (true) {
                if (cur == null) {
                    if (next == files.size()) return -1;
                    cur = new BufferedInputStream(Files.newInputStream(files.get(next++)), 1 << 20);
                }
                int n = cur.read(b, off, len);
                if (n >= 0) return n;
                cur.close();
                cur = null;
            }
        }

        @Override
        public void close() throws IOException {
            if (cur != null) cur.close();
        }
    }
}
