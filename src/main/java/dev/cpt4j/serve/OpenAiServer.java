package dev.cpt4j.serve;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.generate.GenerationConfig;
import dev.cpt4j.model.StepModel;
import dev.cpt4j.tokenizer.Tokenizer;
import io.javalin.Javalin;
import io.javalin.compression.CompressionStrategy;
import io.javalin.http.Context;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The OpenAI-compatible HTTP API over {@link Engine}s ({@code GET /v1/models}, {@code POST /v1/completions},
 * {@code POST /v1/chat/completions}), the web page at {@code /} and the dashboard's data at {@code /api/dashboard}.
 * Served by Javalin (Jetty 12) on virtual threads: a request's thread tokenizes, checks, submits its jobs to the engine
 * and waits for their events, writing server-sent events as they come when {@code stream} is true.
 *
 * <p>Safety: it listens where {@link ServeOptions#host} says (127.0.0.1 by default); with an API key every request
 * but the page's own files needs {@code Authorization: Bearer KEY} (compared in constant time); bodies, prompts,
 * {@code max_tokens}, {@code n} and the requests in flight are bounded (413, 400, 429); the {@code model} field only
 * selects among the served ids, and no field is ever used as a path. Any failure inside a request is answered with
 * an OpenAI-style error object; the engine survives a failing model call. {@link #close} drains: new requests get
 * 503 while the ones in flight finish.
 */
public final class OpenAiServer implements AutoCloseable {
    static final ObjectMapper JSON = new ObjectMapper();
    private static final Set<String> COMPLETION_FIELDS = Set.of("model", "prompt", "max_tokens", "temperature",
            "top_p", "top_k", "n", "stop", "seed", "echo", "stream", "stream_options", "logprobs", "frequency_penalty",
            "presence_penalty", "repetition_penalty", "min_tokens", "best_of", "user", "suffix", "logit_bias");
    private static final Set<String> CHAT_FIELDS = Set.of("model", "messages", "max_tokens", "max_completion_tokens",
            "temperature", "top_p", "top_k", "n", "stop", "seed", "stream", "stream_options", "logprobs",
            "top_logprobs", "frequency_penalty", "presence_penalty", "repetition_penalty", "min_tokens", "user",
            "logit_bias", "add_generation_prompt");

    /**
     * One model id of the API.
     *
     * @param root    the base model's id (the same id for the base itself), OpenAI's {@code root}/{@code parent}
     * @param adapter the LoRA adapter its sequences decode with, or null for the base weights
     * @param chat    the tokenizer's chat template, or null (then chat completions are a 400)
     */
    public record Served(String id, String root, Engine engine, StepModel.Adapter adapter, Tokenizer tokenizer,
                         int[] eos, ChatTemplate chat) {}

    private final ServeOptions opts;
    private volatile Map<String, Served> models = new LinkedHashMap<>();   // copy-on-write: checkpoints come and go
    private final java.util.function.Function<java.nio.file.Path, Object> checkpoints;
    private String checkpointDir;      // the newest checkpoint looked at
    private String checkpointModel;    // its model id, when it is served
    private String checkpointNote;     // why it is not
    private final Dashboard dashboard;
    private final byte[] key;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final long created = System.currentTimeMillis() / 1000;
    private volatile boolean draining;
    private final Javalin app;

    OpenAiServer(ServeOptions opts, List<Served> served) {
        this(opts, served, null);
    }

    /**
     * @param checkpoints with {@code --watch}: a run's checkpoint directory → its adapter as a {@link Served} over the
     *                    base's batch, or a String saying why it cannot be (null: checkpoints are not served)
     */
    OpenAiServer(ServeOptions opts, List<Served> served, java.util.function.Function<java.nio.file.Path, Object> checkpoints) {
        this.opts = opts;
        this.checkpoints = checkpoints;
        for (Served s : served) models.put(s.id(), s);
        this.key = opts.apiKey() == null ? null : opts.apiKey().getBytes(StandardCharsets.UTF_8);
        this.dashboard = new Dashboard(opts.watch());
        this.app = Javalin.create(cfg -> {
            cfg.startup.showJavalinBanner = false;
            cfg.startup.showOldJavalinVersionWarning = false;
            cfg.http.compressionStrategy = CompressionStrategy.NONE;   // server-sent events must not be buffered
            cfg.http.maxRequestSize = opts.maxBodyBytes();
            cfg.concurrency.useVirtualThreads = true;
            cfg.routes.before(this::guard);
            cfg.routes.get("/v1/models", this::listModels);
            cfg.routes.get("/v1/models/{id}", this::getModel);
            cfg.routes.post("/v1/completions", ctx -> generate(ctx, false));
            cfg.routes.post("/v1/chat/completions", ctx -> generate(ctx, true));
            cfg.routes.get("/", ctx -> page(ctx, "index.html"));
            cfg.routes.get("/static/{name}", ctx -> page(ctx, ctx.pathParam("name")));
            cfg.routes.get("/api/dashboard", ctx -> send(ctx, 200, dashboardSnapshot()));
            cfg.routes.get("/health", ctx -> ctx.status(200).result(""));
            cfg.routes.exception(ApiError.class, (e, ctx) -> send(ctx, e.status, e.body(JSON)));
            cfg.routes.exception(dev.cpt4j.UserError.class, (e, ctx) -> send(ctx, 400,
                    ApiError.badRequest(null, e.getMessage()).body(JSON)));
            cfg.routes.exception(Exception.class, (e, ctx) -> send(ctx, 500,
                    new ApiError(500, "server_error", null, null, "internal error: " + e).body(JSON)));
            cfg.routes.error(404, ctx -> {
                if (!String.valueOf(ctx.res().getContentType()).startsWith("application/json"))
                    send(ctx, 404, new ApiError(404, "invalid_request_error", null, "not_found",
                            "no route " + ctx.method() + " " + ctx.path()).body(JSON));
            });
            cfg.routes.error(405, ctx -> send(ctx, 405, new ApiError(405, "invalid_request_error", null,
                    "method_not_allowed", ctx.method() + " is not allowed on " + ctx.path()).body(JSON)));
        });
        app.start(opts.host(), opts.port());
    }

    /** The port it listens on (the chosen one when {@link ServeOptions#port} was 0). */
    public int port() {
        return app.port();
    }

    /** The served ids, the base first. */
    public List<String> modelIds() {
        return new ArrayList<>(models.keySet());
    }

    /** The served model of {@code id}, or null. */
    Served served(String id) {
        return models.get(id);
    }

    /** Requests being answered now. */
    int inFlight() {
        return inFlight.get();
    }

    /** Stops taking requests (503), waits up to {@code seconds} for those in flight, then stops the HTTP server. */
    public void drain(long seconds) {
        draining = true;
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (inFlight.get() > 0 && System.nanoTime() < until) {
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        app.stop();
    }

    @Override
    public void close() {
        drain(60);
    }

    // ------------------------------------------------------------------ routes

    private void guard(Context ctx) {
        String p = ctx.path();
        boolean pageFile = p.equals("/") || p.startsWith("/static/") || p.equals("/health");
        if (draining && !pageFile)
            throw new ApiError(503, "server_error", null, "shutting_down", "the server is shutting down");
        if (key == null || pageFile) return;
        String auth = ctx.header("Authorization");
        byte[] given = auth != null && auth.startsWith("Bearer ")
                ? auth.substring(7).strip().getBytes(StandardCharsets.UTF_8) : new byte[0];
        if (!MessageDigest.isEqual(given, key))
            throw new ApiError(401, "invalid_request_error", null, "invalid_api_key",
                    auth == null ? "missing API key: send the header 'Authorization: Bearer KEY'"
                            : "incorrect API key provided");
    }

    private void listModels(Context ctx) {
        ObjectNode o = JSON.createObjectNode();
        o.put("object", "list");
        ArrayNode data = o.putArray("data");
        for (Served s : models.values()) data.add(modelCard(s));
        send(ctx, 200, o);
    }

    private void getModel(Context ctx) {
        Served s = models.get(ctx.pathParam("id"));
        if (s == null) throw unknownModel(ctx.pathParam("id"));
        send(ctx, 200, modelCard(s));
    }

    private ObjectNode modelCard(Served s) {
        ObjectNode m = JSON.createObjectNode();
        m.put("id", s.id());
        m.put("object", "model");
        m.put("created", created);
        m.put("owned_by", "cpt4j");
        m.put("root", s.root());
        if (s.id().equals(s.root())) m.putNull("parent");
        else m.put("parent", s.root());
        m.put("max_model_len", s.engine().maxLength());
        m.put("chat", s.chat() != null);
        return m;
    }

    private ApiError unknownModel(String id) {
        return new ApiError(404, "invalid_request_error", "model", "model_not_found",
                "The model '" + id + "' does not exist; served: " + String.join(", ", models.keySet()));
    }

    private void page(Context ctx, String name) throws IOException {
        String type = name.endsWith(".html") ? "text/html; charset=utf-8" : name.endsWith(".js")
                ? "text/javascript; charset=utf-8" : name.endsWith(".css") ? "text/css; charset=utf-8" : null;
        // only the page's own files, by name: nothing from the request reaches a path
        if (type == null || !name.matches("[a-z]+\\.(html|js|css)")) throw new ApiError(404, "invalid_request_error",
                null, "not_found", "no file " + name);
        try (InputStream in = OpenAiServer.class.getResourceAsStream("web/" + name)) {
            if (in == null) throw new ApiError(404, "invalid_request_error", null, "not_found", "no file " + name);
            ctx.contentType(type).header("Cache-Control", "no-cache").result(in.readAllBytes());
        }
    }

    /**
     * The dashboard's data; when the watched run has a newer checkpoint with an adapter, that adapter is served from
     * now on as model id {@code checkpoint-N} (over the base's weights, in its batch), replacing the previous one, so
     * the page can show samples of the latest checkpoint.
     */
    private synchronized ObjectNode dashboardSnapshot() {
        ObjectNode snap = dashboard.snapshot();
        java.nio.file.Path ck = checkpoints == null ? null : dashboard.newestAdapterCheckpoint();
        if (ck != null && !ck.getFileName().toString().equals(checkpointDir)) {
            checkpointDir = ck.getFileName().toString();
            Object r;
            try {
                r = checkpoints.apply(ck);
            } catch (RuntimeException e) {
                r = e.getMessage();
            }
            Map<String, Served> next = new LinkedHashMap<>(models);
            if (checkpointModel != null) next.remove(checkpointModel);
            if (r instanceof Served s) {
                next.put(s.id(), s);
                checkpointModel = s.id();
                checkpointNote = null;
            } else {
                checkpointModel = null;
                checkpointNote = checkpointDir + " is not served: " + r;
            }
            models = next;
        }
        if (checkpointModel != null) snap.put("checkpoint_model", checkpointModel);
        if (checkpointNote != null) snap.put("checkpoint_note", checkpointNote);
        snap.put("base_model", models.keySet().iterator().next());
        return snap;
    }

    // ------------------------------------------------------------------ completions

    /** One checked request: its prompts as ids, the sampling settings, the served model. */
    private record Plan(Served model, List<int[]> prompts, int n, int maxTokens, GenerationConfig cfg, long seed,
                        List<String> stop, boolean echo, boolean stream, boolean includeUsage) {}

    private void generate(Context ctx, boolean chat) throws IOException {
        ObjectNode body = readBody(ctx);
        Plan plan = plan(body, chat);
        if (inFlight.incrementAndGet() > opts.maxConcurrent()) {
            inFlight.decrementAndGet();
            ctx.header("Retry-After", "1");
            throw new ApiError(429, "rate_limit_error", null, "rate_limit_exceeded", "the server has "
                    + opts.maxConcurrent() + " requests in flight (--max-concurrent-requests); retry later");
        }
        try {
            run(ctx, plan, chat);
        } finally {
            inFlight.decrementAndGet();
        }
    }

    private ObjectNode readBody(Context ctx) throws IOException {
        long limit = opts.maxBodyBytes();
        long declared = ctx.req().getContentLengthLong();
        if (declared > limit) throw tooLarge(declared);
        byte[] bytes;
        try (InputStream in = ctx.req().getInputStream()) {
            bytes = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, limit + 1));
        }
        if (bytes.length > limit) throw tooLarge(bytes.length);
        JsonNode n;
        try {
            n = JSON.readTree(bytes);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw ApiError.badRequest(null, "the body is not valid JSON: " + e.getOriginalMessage());
        }
        if (n == null || !n.isObject()) throw ApiError.badRequest(null, "the body must be a JSON object");
        return (ObjectNode) n;
    }

    private ApiError tooLarge(long bytes) {
        return new ApiError(413, "invalid_request_error", null, "request_too_large", "the body has " + bytes
                + " bytes; this server takes at most " + opts.maxBodyBytes() + " (--max-body-bytes)");
    }

    private Plan plan(ObjectNode body, boolean chat) {
        Fields f = new Fields(body, chat ? CHAT_FIELDS : COMPLETION_FIELDS);
        String id = f.string("model", models.keySet().iterator().next());
        Served m = models.get(id);
        if (m == null) throw unknownModel(id);
        int V = m.engine().vocab();
        List<int[]> prompts = chat ? List.of(chatPrompt(m, f)) : prompts(f.get("prompt"), m.tokenizer(), V);
        int maxLen = m.engine().maxLength();
        int maxPrompt = opts.maxPromptTokens() > 0 ? Math.min(opts.maxPromptTokens(), maxLen - 1) : maxLen - 1;
        for (int[] p : prompts) {
            if (p.length == 0) throw ApiError.badRequest(chat ? "messages" : "prompt", "the prompt has no tokens");
            if (p.length > maxPrompt) throw ApiError.badRequest(chat ? "messages" : "prompt", "the prompt has "
                    + p.length + " tokens; this server takes at most " + maxPrompt + " (--max-prompt-tokens, --max-model-len)");
        }
        int longest = prompts.stream().mapToInt(p -> p.length).max().orElse(0);
        String mtField = chat && f.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        int room = maxLen - longest;
        long asked = f.integer(mtField, chat ? Math.min(room, opts.maxTokens()) : Math.min(16, room), 1, Integer.MAX_VALUE);
        if (asked > opts.maxTokens())
            throw ApiError.badRequest(mtField, "'" + mtField + "' is " + asked + "; this server allows at most "
                    + opts.maxTokens() + " (--max-tokens-limit)");
        if (asked > room)
            throw ApiError.badRequest(mtField, "This model's maximum context length is " + maxLen + " tokens. However, you requested "
                    + (longest + asked) + " tokens (" + longest + " in the prompt, " + asked + " in the completion). "
                    + "Please reduce the prompt or the completion length.");
        int n = (int) f.integer("n", 1, 1, opts.maxN());
        if (f.has("best_of") && f.integer("best_of", n, 1, opts.maxN()) != n)
            throw ApiError.badRequest("best_of", "'best_of' other than n is not supported by this server");
        if (prompts.size() * n > opts.maxNumSeqs())
            throw ApiError.badRequest("n", prompts.size() + " prompts × n " + n + " sequences exceed the "
                    + opts.maxNumSeqs() + " decoded together (--max-num-seqs)");
        double temperature = f.number("temperature", 1.0, 0, 100);
        double topP = f.number("top_p", 1.0, Double.MIN_VALUE, 1);
        long topK = f.integer("top_k", -1, -1, Integer.MAX_VALUE);
        double repetition = f.number("repetition_penalty", 1.0, Double.MIN_VALUE, 100);
        long minTokens = f.integer("min_tokens", 0, 0, asked);
        Long seed = f.has("seed") ? f.integer("seed", 0, Long.MIN_VALUE, Long.MAX_VALUE) : null;
        f.neutral("frequency_penalty", "use repetition_penalty");
        f.neutral("presence_penalty", "use repetition_penalty");
        f.neutral("logprobs", "log probabilities are not returned");
        f.neutral("top_logprobs", "log probabilities are not returned");
        f.neutral("suffix", "no insertion");
        f.neutral("logit_bias", "no logit bias");
        f.string("user", null);
        boolean echo = !chat && f.bool("echo", false);
        boolean stream = f.bool("stream", false);
        boolean includeUsage = false;
        if (f.has("stream_options")) {
            JsonNode so = f.get("stream_options");
            if (!so.isObject()) throw ApiError.badRequest("stream_options", "'stream_options' must be an object");
            JsonNode iu = so.get("include_usage");
            if (iu != null && !iu.isNull() && !iu.isBoolean())
                throw ApiError.badRequest("stream_options", "'stream_options.include_usage' must be true or false");
            includeUsage = iu != null && iu.asBoolean(false);
        }
        boolean sample = temperature > 0;
        GenerationConfig cfg = new GenerationConfig(sample, sample ? (float) temperature : 1f,
                topK <= 0 ? 0 : (int) topK, (float) topP, (float) repetition, 1, GenerationConfig.UNSET,
                (int) asked, (int) minTokens, chat ? Serve.eos(m.tokenizer(), m.chat()) : m.eos(), GenerationConfig.UNSET, 0L);
        return new Plan(m, prompts, n, (int) asked, cfg,
                seed != null ? seed : java.util.concurrent.ThreadLocalRandom.current().nextLong(), f.stop(4), echo,
                stream, includeUsage);
    }

    /** {@code prompt}: a string, a list of strings, a list of token ids, or a list of such lists. */
    private static List<int[]> prompts(JsonNode p, Tokenizer tok, int V) {
        if (p == null) throw ApiError.badRequest("prompt", "'prompt' is required");
        List<int[]> out = new ArrayList<>();
        if (p.isTextual()) out.add(tok.encode(p.asText(), false));
        else if (p.isArray() && !p.isEmpty() && p.get(0).isIntegralNumber()) out.add(ids(p, V));
        else if (p.isArray() && !p.isEmpty()) {
            for (JsonNode e : p) {
                if (e.isTextual()) out.add(tok.encode(e.asText(), false));
                else if (e.isArray()) out.add(ids(e, V));
                else throw ApiError.badRequest("prompt", "'prompt' lists must hold strings or lists of token ids");
            }
        } else throw ApiError.badRequest("prompt", "'prompt' must be a string, a list of strings, or token ids");
        return out;
    }

    private static int[] ids(JsonNode a, int V) {
        int[] ids = new int[a.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode e = a.get(i);
            if (!e.isIntegralNumber() || e.asLong() < 0 || e.asLong() >= V)
                throw ApiError.badRequest("prompt", "token id " + e + " is outside the vocabulary [0, " + V + ")");
            ids[i] = e.asInt();
        }
        return ids;
    }

    private static int[] chatPrompt(Served m, Fields f) {
        if (m.chat() == null)
            throw ApiError.badRequest("model", "the model '" + m.id() + "' has no chat template (tokenizer_config.json "
                    + "has no chat_template); use /v1/completions");
        JsonNode msgs = f.get("messages");
        if (msgs == null || !msgs.isArray() || msgs.isEmpty())
            throw ApiError.badRequest("messages", "'messages' must be a non-empty list of {role, content}");
        List<Map<String, Object>> list = new ArrayList<>();
        for (JsonNode msg : msgs) {
            if (!msg.isObject() || !msg.path("role").isTextual())
                throw ApiError.badRequest("messages", "each message needs a string 'role'");
            JsonNode c = msg.get("content");
            String text;
            if (c == null || c.isNull()) text = "";
            else if (c.isTextual()) text = c.asText();
            else if (c.isArray()) {
                StringBuilder sb = new StringBuilder();
                for (JsonNode part : c) {
                    if (!"text".equals(part.path("type").asText()))
                        throw ApiError.badRequest("messages", "only text content parts are supported");
                    sb.append(part.path("text").asText());
                }
                text = sb.toString();
            } else throw ApiError.badRequest("messages", "'content' must be a string or a list of text parts");
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("role", msg.get("role").asText());
            e.put("content", text);
            list.add(e);
        }
        String rendered = m.chat().render(list, f.bool("add_generation_prompt", true));
        return m.tokenizer().encode(rendered, false);
    }

    /** An event from the engine thread to the request's thread. */
    private record Event(int choice, String delta, String finish, String text, int tokens, String error) {}

    private void run(Context ctx, Plan plan, boolean chat) throws IOException {
        LinkedBlockingQueue<Event> events = new LinkedBlockingQueue<>();
        List<Engine.Job> jobs = new ArrayList<>();
        int n = plan.n();
        int promptTokens = 0;
        for (int p = 0; p < plan.prompts().size(); p++) {
            int base = p * n;
            int[] ids = plan.prompts().get(p);
            promptTokens += ids.length;
            Engine.Sink sink = new Engine.Sink() {
                @Override
                public void delta(int seq, String text) {
                    events.add(new Event(base + seq, text, null, null, 0, null));
                }

                @Override
                public void finished(int seq, String text, String reason, int tokens) {
                    events.add(new Event(base + seq, null, reason, text, tokens, null));
                }

                @Override
                public void failed(String message) {
                    events.add(new Event(base, null, null, null, 0, message));
                }
            };
            // each prompt's sequences draw from the request's seed, as generate's --seed does for its batch
            jobs.add(plan.model().engine().submit(new Engine.Request(ids, n, plan.maxTokens(), plan.cfg(),
                    plan.seed() + p, plan.stop(), plan.model().adapter()), sink));
        }
        int choices = plan.prompts().size() * n;
        String id = (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "");
        long now = System.currentTimeMillis() / 1000;
        String[] texts = new String[choices], reasons = new String[choices];
        int completionTokens = 0, left = choices;
        OutputStream out = null;
        try {
            if (plan.stream()) {
                ctx.status(200).contentType("text/event-stream; charset=utf-8").header("Cache-Control", "no-cache")
                        .header("X-Accel-Buffering", "no");
                out = ctx.res().getOutputStream();
                for (int c = 0; c < choices; c++) {
                    if (chat) {
                        ObjectNode d = JSON.createObjectNode();
                        d.put("role", "assistant");
                        d.put("content", "");
                        sse(out, chunk(id, now, plan, chat, c, d, null));
                    } else if (plan.echo()) {
                        sse(out, chunk(id, now, plan, chat, c, textDelta(plan.model().tokenizer()
                                .decode(plan.prompts().get(c / n))), null));
                    }
                }
                out.flush();
            }
            while (left > 0) {
                Event e;
                try {
                    e = events.take();
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new ApiError(503, "server_error", null, null, "interrupted");
                }
                if (e.error() != null)
                    throw new ApiError(500, "server_error", null, null, "generation failed: " + e.error());
                if (e.finish() == null) {
                    if (out != null && !e.delta().isEmpty()) {
                        sse(out, chunk(id, now, plan, chat, e.choice(), chat ? content(e.delta()) : textDelta(e.delta()), null));
                        out.flush();
                    }
                    continue;
                }
                texts[e.choice()] = e.text();
                reasons[e.choice()] = e.finish();
                completionTokens += e.tokens();
                left--;
                if (out != null) {
                    sse(out, chunk(id, now, plan, chat, e.choice(), chat ? JSON.createObjectNode() : textDelta(""), e.finish()));
                    out.flush();
                }
            }
            ObjectNode usage = JSON.createObjectNode();
            usage.put("prompt_tokens", promptTokens);
            usage.put("completion_tokens", completionTokens);
            usage.put("total_tokens", promptTokens + completionTokens);
            if (out != null) {
                if (plan.includeUsage()) {
                    ObjectNode last = header(id, now, plan, chat);
                    last.putArray("choices");
                    last.set("usage", usage);
                    sse(out, last);
                }
                out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
                out.flush();
                return;
            }
            ObjectNode o = header(id, now, plan, chat);
            ArrayNode arr = o.putArray("choices");
            for (int c = 0; c < choices; c++) {
                ObjectNode ch = arr.addObject();
                ch.put("index", c);
                if (chat) {
                    ObjectNode msg = ch.putObject("message");
                    msg.put("role", "assistant");
                    msg.put("content", texts[c]);
                } else {
                    String prefix = plan.echo() ? plan.model().tokenizer().decode(plan.prompts().get(c / n)) : "";
                    ch.put("text", prefix + texts[c]);
                }
                ch.putNull("logprobs");
                ch.put("finish_reason", reasons[c]);
            }
            o.set("usage", usage);
            send(ctx, 200, o);
        } catch (IOException | RuntimeException e) {
            for (Engine.Job j : jobs) j.cancel();     // the client went away, or the request failed: free the slots
            if (out != null && e instanceof ApiError ae) {
                try {   // the status is sent already: the error goes into the stream, as OpenAI's streams do
                    sse(out, ae.body(JSON));
                    out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
                    out.flush();
                } catch (IOException ignored) {
                    // the client is gone
                }
                return;
            }
            if (out != null) return;
            throw e;
        }
    }

    private ObjectNode header(String id, long now, Plan plan, boolean chat) {
        ObjectNode o = JSON.createObjectNode();
        o.put("id", id);
        o.put("object", chat ? "chat.completion" + (plan.stream() ? ".chunk" : "") : "text_completion");
        o.put("created", now);
        o.put("model", plan.model().id());
        return o;
    }

    private ObjectNode chunk(String id, long now, Plan plan, boolean chat, int choice, ObjectNode delta, String finish) {
        ObjectNode o = header(id, now, plan, chat);
        ObjectNode ch = o.putArray("choices").addObject();
        ch.put("index", choice);
        if (chat) ch.set("delta", delta);
        else ch.put("text", delta.path("text").asText());
        ch.putNull("logprobs");
        if (finish == null) ch.putNull("finish_reason");
        else ch.put("finish_reason", finish);
        return o;
    }

    private static ObjectNode textDelta(String s) {
        ObjectNode o = JSON.createObjectNode();
        o.put("text", s);
        return o;
    }

    private static ObjectNode content(String s) {
        ObjectNode o = JSON.createObjectNode();
        o.put("content", s);
        return o;
    }

    private static void sse(OutputStream out, JsonNode o) throws IOException {
        out.write(("data: " + JSON.writeValueAsString(o) + "\n\n").getBytes(StandardCharsets.UTF_8));
    }

    private static void send(Context ctx, int status, JsonNode o) {
        try {
            ctx.status(status).contentType("application/json").result(JSON.writeValueAsBytes(o));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
