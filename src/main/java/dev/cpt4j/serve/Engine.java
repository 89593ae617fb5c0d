package dev.cpt4j.serve;

import dev.cpt4j.generate.GenerationConfig;
import dev.cpt4j.generate.TokenChooser;
import dev.cpt4j.model.StepModel;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;

/**
 * Continuous batching over one KV-cache decoder (Orca, Yu et al. 2022; vLLM's scheduler without paging): the
 * decoder's N sequence slots are shared by every request in flight. One thread runs the loop: between two decode
 * steps it admits waiting jobs into free slots (each sequence prefilled alone, {@link StepModel#prefillSlot}, while
 * the others keep their caches), then advances every live sequence by one token in one {@link StepModel#next};
 * a sequence that ends frees its slot at once ({@link StepModel#release}).
 *
 * <p>Each job picks its tokens exactly as {@code generate} does: its own {@link TokenChooser} over its own rows and
 * its own seeded generator, sequences in order each step, so a job's output does not depend on what else is in the
 * batch (beyond the last bits of float rounding, see {@code StepModel#prefillSlot}). What this is not: paged
 * attention, prefix sharing or chunked prefill (a long prompt's prefill holds the other sequences for its duration).
 */
final class Engine implements AutoCloseable {
    /** What a job reports, called on the engine thread; implementations must not block. */
    interface Sink {
        /** New text of choice {@code seq} (may be empty when a token completed no character). */
        void delta(int seq, String text);

        /** Choice {@code seq} ended: its whole text and why ("stop" or "length"). */
        void finished(int seq, String text, String reason, int tokens);

        /** The job failed (the model threw); no more calls follow. */
        void failed(String message);
    }

    /**
     * One prompt to continue {@code n} times.
     *
     * @param cfg       sampling settings (its numReturnSequences is ignored: {@code n} counts the sequences)
     * @param adapter   the LoRA adapter of every sequence of this job, or null for the base weights
     * @param maxTokens new tokens at most per sequence
     * @param stop      strings that end a sequence (not included in its text)
     */
    record Request(int[] prompt, int n, int maxTokens, GenerationConfig cfg, long seed, List<String> stop,
                   StepModel.Adapter adapter) {}

    /** A job in flight; {@link #cancel} stops it at the next step (a client that went away). */
    static final class Job {
        final Request req;
        final Sink sink;
        volatile boolean cancelled;
        TokenChooser chooser;
        SplittableRandom rng;
        float[] rows;            // (n, V) this job's logits rows
        int[] slots;             // (n)
        int[][] gen;             // (n, ≤maxTokens) generated ids, eos excluded
        int[] count;             // (n) tokens generated (eos included)
        int[] last;              // (n) token fed next
        boolean[] done;          // (n)
        int[] emitted;           // (n) chars of text already sent
        String[] sent;           // (n) the text already sent
        String promptText;
        int[] eos;
        int live;

        Job(Request req, Sink sink) {
            this.req = req;
            this.sink = sink;
        }

        void cancel() {
            cancelled = true;
        }
    }

    private final StepModel model;
    private final Function<int[], String> decode;
    private final int V, slots;
    private final Job[] slotJob;
    private final int[] slotSeq;
    private final int[] lastTokens;
    private final boolean[] active;
    private final ArrayDeque<Job> waiting = new ArrayDeque<>();
    private final List<Job> running = new ArrayList<>();
    private final Object lock = new Object();
    private final Thread thread;
    private boolean open = true;
    private int free;
    private long steps, tokens;

    /** @param decode ids → clean text (the tokenizer's decode) */
    Engine(StepModel model, Function<int[], String> decode, String name) {
        this.model = model;
        this.decode = decode;
        this.V = model.vocabSize();
        this.slots = model.maxSequences();
        this.free = slots;
        this.slotJob = new Job[slots];
        this.slotSeq = new int[slots];
        this.lastTokens = new int[slots];
        this.active = new boolean[slots];
        this.thread = Thread.ofPlatform().name(name).daemon(true).start(this::loop);
    }

    /** The decoder (adapters are prepared on it). */
    StepModel model() {
        return model;
    }

    /** Width of a logits row: token ids are in [0, vocab). */
    int vocab() {
        return V;
    }

    /** Most sequences decoded together. */
    int slots() {
        return slots;
    }

    /** Most positions (prompt + new tokens) one sequence may reach. */
    int maxLength() {
        return model.maxLength();
    }

    /** Queues a job (it starts when {@code n} slots are free); the sink hears from the engine thread. */
    Job submit(Request req, Sink sink) {
        if (req.n() > slots) throw new IllegalArgumentException("n " + req.n() + " exceeds the " + slots + " slots");
        Job j = new Job(req, sink);
        synchronized (lock) {
            if (!open) throw new IllegalStateException("the engine is stopped");
            waiting.add(j);
            lock.notifyAll();
        }
        return j;
    }

    /** Decode steps run and tokens generated so far (for the dashboard and tests). */
    long[] counters() {
        synchronized (lock) {
            return new long[] {steps, tokens};
        }
    }

    /** Finishes the jobs in flight and queued, then stops the thread. */
    @Override
    public void close() {
        synchronized (lock) {
            open = false;
            lock.notifyAll();
        }
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void loop() {
        List<Job> admitted = new ArrayList<>();
        while (true) {
            admitted.clear();
            synchronized (lock) {
                while (open && waiting.isEmpty() && running.isEmpty()) {
                    try {
                        lock.wait();
                    } catch (InterruptedException e) {
                        return;
                    }
                }
                if (!open && waiting.isEmpty() && running.isEmpty()) return;
                // first come, first served: a job that does not fit yet holds the ones behind it (no starvation)
                while (!waiting.isEmpty() && waiting.peek().req.n() <= free) {
                    Job j = waiting.poll();
                    free -= j.req.n();
                    admitted.add(j);
                    running.add(j);
                }
            }
            try {
                for (Job j : admitted) start(j);
                dropCancelled();
                if (!running.isEmpty()) step();
            } catch (RuntimeException | OutOfMemoryError e) {
                failAll(e);
            }
        }
    }

    private void start(Job j) {
        Request r = j.req;
        int n = r.n();
        j.chooser = new TokenChooser(r.cfg(), V, n);
        j.chooser.start(r.prompt());
        j.rng = new SplittableRandom(r.seed());
        j.rows = new float[n * V];
        j.slots = new int[n];
        j.gen = new int[n][r.maxTokens()];
        j.count = new int[n];
        j.last = new int[n];
        j.done = new boolean[n];
        j.emitted = new int[n];
        j.sent = new String[n];
        Arrays.fill(j.sent, "");
        j.live = n;
        j.promptText = decode.apply(r.prompt());
        j.eos = r.cfg().eosTokenIds();
        for (int i = 0, s = 0; i < n; i++) {
            while (slotJob[s] != null) s++;
            j.slots[i] = s;
            slotJob[s] = j;
            slotSeq[s] = i;
            model.setAdapter(s, r.adapter());
            float[] lg = model.prefillSlot(s, r.prompt());
            System.arraycopy(lg, s * V, j.rows, i * V, V);
        }
        for (int i = 0; i < n; i++) accept(j, i, j.chooser.choose(j.rows, i, j.rng));
    }

    private void step() {
        Arrays.fill(active, false);
        for (Job j : running)
            for (int i = 0; i < j.req.n(); i++)
                if (!j.done[i]) {
                    active[j.slots[i]] = true;
                    lastTokens[j.slots[i]] = j.last[i];
                }
        float[] lg = model.next(lastTokens, active);
        synchronized (lock) {
            steps++;
        }
        for (Job j : new ArrayList<>(running)) {
            for (int i = 0; i < j.req.n(); i++) {
                if (j.done[i]) continue;
                System.arraycopy(lg, j.slots[i] * V, j.rows, i * V, V);
                accept(j, i, j.chooser.choose(j.rows, i, j.rng));
            }
        }
    }

    /** Sequence i of j produced {@code tok}: record it, stream its text, end it on eos, a stop string or the length. */
    private void accept(Job j, int i, int tok) {
        j.chooser.append(i, tok);
        j.count[i]++;
        synchronized (lock) {
            tokens++;
        }
        if (isEos(j.eos, tok)) {
            finish(j, i, text(j, i), "stop");
            return;
        }
        j.gen[i][j.count[i] - 1] = tok;
        j.last[i] = tok;
        int genLen = j.count[i];
        String text = text(j, i, genLen);
        int stopAt = -1;
        for (String s : j.req.stop()) {
            int at = text.indexOf(s);
            if (at >= 0 && (stopAt < 0 || at < stopAt)) stopAt = at;
        }
        if (stopAt >= 0) {
            finish(j, i, text.substring(0, stopAt), "stop");
            return;
        }
        if (genLen >= j.req.maxTokens()) {
            finish(j, i, text, "length");
            return;
        }
        int end = text.length();
        while (end > j.emitted[i] && text.charAt(end - 1) == '\uFFFD') end--; // an incomplete UTF-8 sequence
        for (String s : j.req.stop()) end = Math.min(end, text.length() - stopPrefix(text, s));
        if (end > j.emitted[i] && text.startsWith(j.sent[i])) {
            j.sink.delta(i, text.substring(j.emitted[i], end));
            j.emitted[i] = end;
            j.sent[i] = text.substring(0, end);
        }
    }

    /** Length of the longest suffix of {@code text} that is a proper prefix of {@code stop}: held back while streaming. */
    static int stopPrefix(String text, String stop) {
        for (int k = Math.min(stop.length() - 1, text.length()); k > 0; k--)
            if (text.regionMatches(text.length() - k, stop, 0, k)) return k;
        return 0;
    }

    private String text(Job j, int i) {
        return text(j, i, j.count[i] - 1);
    }

    /**
     * The continuation as the tokenizer joins it to the prompt (what {@code generate} prints after the prompt): the
     * whole decoded text past the prompt's own text, else the new ids decoded alone.
     */
    private String text(Job j, int i, int genLen) {
        int[] prompt = j.req.prompt();
        int[] all = Arrays.copyOf(prompt, prompt.length + genLen);
        System.arraycopy(j.gen[i], 0, all, prompt.length, genLen);
        String whole = decode.apply(all);
        return whole.startsWith(j.promptText) ? whole.substring(j.promptText.length())
                : decode.apply(Arrays.copyOf(j.gen[i], genLen));
    }

    private void finish(Job j, int i, String text, String reason) {
        j.done[i] = true;
        j.live--;
        releaseSlot(j.slots[i]);
        // what was streamed is a prefix of the final text unless a later token changed earlier characters (the
        // decoder's clean-up); then the stream keeps what it sent and the final text is the whole truth
        if (text.length() > j.emitted[i] && text.startsWith(j.sent[i])) j.sink.delta(i, text.substring(j.emitted[i]));
        j.emitted[i] = text.length();
        j.sink.finished(i, text, reason, j.count[i]);
        if (j.live == 0) {
            synchronized (lock) {
                running.remove(j);
            }
        }
    }

    private void releaseSlot(int s) {
        model.release(s);
        model.setAdapter(s, null);
        slotJob[s] = null;
        synchronized (lock) {
            free++;
        }
    }

    private void dropCancelled() {
        synchronized (lock) {
            waiting.removeIf(j -> j.cancelled);
        }
        for (Iterator<Job> it = new ArrayList<>(running).iterator(); it.hasNext(); ) {
            Job j = it.next();
            if (!j.cancelled) continue;
            for (int i = 0; i < j.req.n(); i++)
                if (!j.done[i]) {
                    j.done[i] = true;
                    releaseSlot(j.slots[i]);
                }
            synchronized (lock) {
                running.remove(j);
            }
        }
    }

    /** The model threw: every job in flight fails with the message, the slots are freed, the loop goes on. */
    private void failAll(Throwable e) {
        String msg = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        List<Job> all;
        synchronized (lock) {
            all = new ArrayList<>(running);
            running.clear();
        }
        for (int s = 0; s < slots; s++) {
            if (slotJob[s] == null) continue;
            try {
                releaseSlot(s);
            } catch (RuntimeException ignored) {
                slotJob[s] = null;
            }
        }
        synchronized (lock) {
            free = slots;
        }
        for (Job j : all) j.sink.failed(msg);
    }

    private static boolean isEos(int[] eos, int tok) {
        for (int e : eos) if (e == tok) return true;
        return false;
    }
}
