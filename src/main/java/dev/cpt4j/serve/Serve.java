package dev.cpt4j.serve;

import dev.cpt4j.UserError;
import dev.cpt4j.generate.LoadedModel;
import dev.cpt4j.generate.TextGeneration;
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
 * <p>Adapters: each adapter id gets its own engine over the base merged with that adapter
 * ({@link LoadedModel#load}, the same merge {@code generate --adapter} uses), so its completions equal
 * {@code generate --adapter}'s. That costs one copy of the weights per adapter; decoding all adapters in one batch
 * over shared base weights (LoRA applied unmerged per slot, {@link StepModel#setAdapter}) is the contract's next step.
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
            served.add(load(o, baseId, baseId, null, engines, pools));
            for (Map.Entry<String, Path> e : o.loraModules().entrySet())
                served.add(load(o, e.getKey(), baseId, e.getValue(), engines, pools));
            OpenAiServer server = new OpenAiServer(o, served);
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

    private static OpenAiServer.Served load(ServeOptions o, String id, String root, Path adapter, List<Engine> engines,
                                            List<Parallel> pools) {
        LoadedModel m = LoadedModel.load(o.model(), adapter);
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
        return new OpenAiServer.Served(id, root, engine, null, m.tokenizer(), TextGeneration.defaultEos(m.tokenizer()),
                ChatTemplate.of(m.tokenizerDir()));
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
