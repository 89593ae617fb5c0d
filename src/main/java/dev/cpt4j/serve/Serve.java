package dev.cpt4j.serve;

import dev.cpt4j.UserError;
import dev.cpt4j.generate.LoadedModel;
import dev.cpt4j.generate.TextGeneration;
import dev.cpt4j.hf.AdapterMerge;
import dev.cpt4j.hf.PeftAdapters;
import dev.cpt4j.model.UnmergedAdapter;
import dev.cpt4j.tokenizer.Tokenizer;
import dev.cpt4j.model.StepModel;
import dev.cpt4j.tensor.Parallel;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * {@code cpt4j serve}: loads the model (and each {@code --lora-modules} adapter), starts one continuous-batching
 * {@link Engine} per served weight set and the {@link OpenAiServer} in front of them. Closing drains the HTTP side,
 * then the engines, then frees the worker threads.
 *
 * <p>Adapters share the base's engine and weights: each is prepared once for the decoder
 * ({@link StepModel#prepareAdapter}: its LoRA pairs, and its embedding and head copies when {@code modules_to_save}
 * trained them) and set on the slots of the requests that name it, so requests for the base and for any adapter
 * decode in the same batch, the LoRA terms applied unmerged per row. An adapter that changes more than that (a
 * resized vocabulary or its own tokenizer, trainable tokens, LoRA on the embedding or head, other saved modules)
 * gets an engine of its own over the merged weights ({@link LoadedModel#load}, as {@code generate --adapter}), and
 * the server says so at start.
 */
public final class Serve implements AutoCloseable {
    private final OpenAiServer server;
    private final List<Engine> engines;
    private final List<Parallel> pools;

    private Serve(OpenAiServer server, List<Engine> engines, List<Parallel> pools) {
        this.server = server;
        this.engines = engines;
        this.pools = pools;
    }

    /** Loads and listens; a bad directory or flag is a {@link UserError}. */
    public static Serve start(ServeOptions o) {
        if (!Files.isDirectory(o.model()))
            throw new UserError("--model " + o.model() + " is not a directory; give the directory holding config.json and the weights");
        for (Map.Entry<String, Path> e : o.loraModules().entrySet())
            if (!Files.isDirectory(e.getValue()))
                throw new UserError("--lora-modules " + e.getKey() + "=" + e.getValue()
                        + ": not a directory; give the adapter directory holding adapter_config.json");
        String baseId = o.servedModelName() != null ? o.servedModelName()
                : o.model().toAbsolutePath().normalize().getFileName().toString();
        if (o.loraModules().containsKey(baseId))
            throw new UserError("--lora-modules " + baseId + " uses the base model's id; pick another NAME");
        List<Engine> engines = new ArrayList<>();
        List<Parallel> pools = new ArrayList<>();
        List<OpenAiServer.Served> served = new ArrayList<>();
        try {
            LoadedModel baseModel = LoadedModel.load(o.model(), null);
            OpenAiServer.Served base = load(o, baseId, baseId, baseModel, engines, pools);
            served.add(base);
            StepModel dec = base.engine().model();
            for (Map.Entry<String, Path> e : o.loraModules().entrySet()) {
                Path dir = e.getValue();
                StringBuilder why = new StringBuilder();
                UnmergedAdapter u = null;
                Tokenizer own = LoadedModel.tokenizerOf(o.model(), dir);
                if (!own.fingerprint().equals(baseModel.tokenizer().fingerprint())) why.append("it has its own tokenizer");
                else u = AdapterMerge.unmerged(baseModel.modelDir(), PeftAdapters.read(dir), dir.toString(),
                        o.model().toString(), why);
                if (u != null) {   // one batch, shared base weights: the adapter rides on its sequences' slots
                    served.add(new OpenAiServer.Served(e.getKey(), baseId, base.engine(), dec.prepareAdapter(u),
                            base.tokenizer(), base.eos(), base.chat()));
                } else {
                    System.err.println("cpt4j serve: adapter " + e.getKey() + " is served merged, with its own copy of "
                            + "the weights, since " + why);
                    served.add(load(o, e.getKey(), baseId, LoadedModel.load(o.model(), dir), engines, pools));
                }
            }
            // with --watch, the run's newest checkpoint adapter is served too (the dashboard samples it)
            java.util.function.Function<Path, Object> checkpoints = o.watch() == null ? null : ck -> {
                Tokenizer own = LoadedModel.tokenizerOf(o.model(), ck);
                if (!own.fingerprint().equals(baseModel.tokenizer().fingerprint()))
                    return "its tokenizer is not the base model's";
                StringBuilder why = new StringBuilder();
                UnmergedAdapter u = AdapterMerge.unmerged(baseModel.modelDir(), PeftAdapters.read(ck), ck.toString(),
                        o.model().toString(), why);
                if (u == null) return why.toString();
                return new OpenAiServer.Served(ck.getFileName().toString(), baseId, base.engine(),
                        dec.prepareAdapter(u), base.tokenizer(), base.eos(), base.chat());
            };
            OpenAiServer server = new OpenAiServer(o, served, checkpoints);
            return new Serve(server, engines, pools);
        } catch (RuntimeException e) {
            for (Engine en : engines) en.close();
            for (Parallel p : pools) p.close();
            if (e instanceof UserError) throw e;
            if (e.getClass().getName().startsWith("io.javalin") || e.getCause() instanceof java.io.IOException)
                throw new UserError("cannot listen on " + o.host() + ":" + o.port() + " (" + rootMessage(e)
                        + "); pick another --port or --host", e);
            throw e;
        }
    }

    private static String rootMessage(Throwable e) {
        Throwable c = e;
        while (c.getCause() != null) c = c.getCause();
        return c.getMessage();
    }

    private static OpenAiServer.Served load(ServeOptions o, String id, String root, LoadedModel m, List<Engine> engines,
                                            List<Parallel> pools) {
        int context = m.config().contextLength();
        int maxLen = o.maxModelLen() > 0 ? o.maxModelLen() : Math.min(context, 2048);
        if (maxLen > context)
            throw new UserError("--max-model-len " + maxLen + " exceeds the model's context of " + context
                    + " positions; use " + context + " or less");
        Parallel par = o.threads() > 0 ? new Parallel(o.threads()) : Parallel.allCores();
        pools.add(par);
        StepModel dec = m.decoder(o.maxNumSeqs(), maxLen, par);
        Engine engine = new Engine(dec, m.tokenizer()::decode, "cpt4j-engine-" + id);
        engines.add(engine);
        ChatTemplate chat = ChatTemplate.of(m.tokenizerDir());
        return new OpenAiServer.Served(id, root, engine, null, m.tokenizer(), TextGeneration.defaultEos(m.tokenizer()), chat);
    }

    /** True when {@code id} decodes in the same batch, over the same weights, as {@code other}. */
    boolean sameBatch(String id, String other) {
        return server.served(id).engine() == server.served(other).engine();
    }

    /**
     * Where a chat completion ends: {@code generate}'s default end-of-text id, plus the end-of-turn token the
     * tokenizer_config.json names as {@code eos_token}. (Text completions stop at the default id only, as
     * {@code generate} does.)
     */
    static int[] eos(Tokenizer tok, ChatTemplate chat) {
        int[] eos = TextGeneration.defaultEos(tok);
        int turn = chat == null || chat.eosToken() == null ? -1 : tok.tokenToId(chat.eosToken());
        for (int e : eos) if (e == turn) return eos;
        if (turn < 0) return eos;
        int[] out = java.util.Arrays.copyOf(eos, eos.length + 1);
        out[eos.length] = turn;
        return out;
    }

    public int port() {
        return server.port();
    }

    public List<String> modelIds() {
        return server.modelIds();
    }

    /** Stops taking requests, lets those in flight finish (up to {@code seconds}), stops. */
    public void drain(long seconds) {
        server.drain(seconds);
        for (Engine e : engines) e.close();
        for (Parallel p : pools) p.close();
    }

    @Override
    public void close() {
        drain(60);
    }
}
