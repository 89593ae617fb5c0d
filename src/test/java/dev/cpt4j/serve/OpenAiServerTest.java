package dev.cpt4j.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cpt4j.cli.Main;
import dev.cpt4j.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Every endpoint of {@code cpt4j serve} from a real HTTP client (the JDK's), on the tiny WordPiece GPT-2 of
 * golden/generate (with its peft adapter): greedy completions equal {@code cpt4j generate --do-sample false},
 * seeded sampling equals {@code generate --do-sample true --seed}, streaming, concurrency, stop strings, the
 * limits and the error bodies.
 */
class OpenAiServerTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String KEY = "test-key";
    static final Path MODEL = Path.of("src/test/resources/golden/generate/tiny_wp");
    /** The golden adapter adds two tokens: served merged, with its own engine. */
    static final Path WIDE = Path.of("src/test/resources/golden/generate/tiny_wp_adapter");
    /** The same adapter cut to the base's vocabulary: served unmerged, in the base's batch over its weights. */
    static Path ADAPTER;
    static Serve serve;
    static String base;
    static final HttpClient http = HttpClient.newHttpClient();
    @TempDir
    static Path tmp;

    @BeforeAll
    static void start() throws Exception {
        // a copy of the model with a chat template, served as a second base would be: here it is the same weights
        Path chatModel = tmp.resolve("tiny_chat");
        Files.createDirectories(chatModel);
        try (Stream<Path> s = Files.list(MODEL)) {
            for (Path p : s.toList()) Files.copy(p, chatModel.resolve(p.getFileName()));
        }
        Files.writeString(chatModel.resolve("tokenizer_config.json"), JSON.writeValueAsString(Map.of(
                "chat_template", "{% for m in messages %}{{ m['role'] }}：{{ m['content'] }}\n{% endfor %}"
                        + "{% if add_generation_prompt %}assistant：{% endif %}")));
        ADAPTER = Adapters.writeWithVocab(WIDE, tmp.resolve("poem"), 64, 32);
        java.util.LinkedHashMap<String, Path> lora = new java.util.LinkedHashMap<>();
        lora.put("poem", ADAPTER);
        lora.put("wide", WIDE);
        serve = Serve.start(new ServeOptions(MODEL, "tiny", lora, "127.0.0.1", 0, KEY, 4, 0,
                4096, 40, 60, 2, 64, null, 2));
        base = "http://127.0.0.1:" + serve.port();
        chat = Serve.start(new ServeOptions(chatModel, null, Map.of(), "127.0.0.1", 0, null, 2, 0, 4096, 0, 60, 2, 8,
                null, 1));
    }

    static Serve chat;

    @AfterAll
    static void stop() {
        if (serve != null) serve.close();
        if (chat != null) chat.close();
    }

    static HttpResponse<String> post(String path, String body, String key) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body));
        if (key != null) b.header("Authorization", "Bearer " + key);
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
    }

    static JsonNode ok(String path, String body) throws Exception {
        HttpResponse<String> r = post(path, body, KEY);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return JSON.readTree(r.body());
    }

    static JsonNode error(int status, String path, String body) throws Exception {
        HttpResponse<String> r = post(path, body, KEY);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(status);
        JsonNode e = JSON.readTree(r.body()).get("error");
        assertThat(e).as(r.body()).isNotNull();
        assertThat(e.get("message").asText()).isNotBlank();
        assertThat(e.has("type") && e.has("param") && e.has("code")).isTrue();
        return e;
    }

    /** What {@code cpt4j generate} prints (prompt + continuation) for these flags. */
    static String generate(String... args) {
        PrintStream old = System.out;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        try {
            List<String> a = new ArrayList<>(List.of("generate", "--model", MODEL.toString(), "--threads", "1"));
            a.addAll(List.of(args));
            assertThat(Main.execute(a.toArray(String[]::new))).isZero();
        } finally {
            System.setOut(old);
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    @Test
    void modelsListsTheBaseAndEachAdapter() throws Exception {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/models"))
                .header("Authorization", "Bearer " + KEY).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).isEqualTo(200);
        JsonNode o = JSON.readTree(r.body());
        assertThat(o.get("object").asText()).isEqualTo("list");
        assertThat(o.get("data").findValuesAsText("id")).containsExactly("tiny", "poem", "wide");
        assertThat(serve.sameBatch("poem", "tiny")).isTrue();    // unmerged, over the base's weights
        assertThat(serve.sameBatch("wide", "tiny")).isFalse();   // resizes the vocabulary: merged, its own engine
        assertThat(o.get("data").get(1).get("parent").asText()).isEqualTo("tiny");
        HttpResponse<String> one = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/models/poem"))
                .header("Authorization", "Bearer " + KEY).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(JSON.readTree(one.body()).get("id").asText()).isEqualTo("poem");
    }

    @Test
    void greedyCompletionEqualsGenerate() throws Exception {
        for (String model : List.of("tiny", "poem", "wide")) {
            JsonNode o = ok("/v1/completions", "{\"model\":\"" + model + "\",\"prompt\":\"床前明月光\",\"max_tokens\":12,\"temperature\":0}");
            String[] adapter = model.equals("tiny") ? new String[0]
                    : new String[] {"--adapter", (model.equals("poem") ? ADAPTER : WIDE).toString()};
            List<String> flags = new ArrayList<>(List.of("--prompt", "床前明月光", "--do-sample", "false", "--max-new-tokens", "12"));
            flags.addAll(List.of(adapter));
            String printed = generate(flags.toArray(String[]::new)).strip();
            JsonNode ch = o.get("choices").get(0);
            assertThat("床前明月光" + ch.get("text").asText()).as(model).isEqualTo(printed);
            assertThat(o.get("object").asText()).isEqualTo("text_completion");
            assertThat(o.get("model").asText()).isEqualTo(model);
            int promptTokens = Tokenizer.load(MODEL).encode("床前明月光", false).length;
            JsonNode u = o.get("usage");
            assertThat(u.get("prompt_tokens").asInt()).isEqualTo(promptTokens);
            assertThat(u.get("total_tokens").asInt()).isEqualTo(promptTokens + u.get("completion_tokens").asInt());
            if (ch.get("finish_reason").asText().equals("length")) assertThat(u.get("completion_tokens").asInt()).isEqualTo(12);
        }
    }

    @Test
    void seededSamplingEqualsGenerate() throws Exception {
        JsonNode o = ok("/v1/completions", "{\"prompt\":\"明月\",\"max_tokens\":10,\"temperature\":0.8,\"top_p\":0.9,"
                + "\"n\":2,\"seed\":7}");
        String printed = generate("--prompt", "明月", "--do-sample", "true", "--temperature", "0.8", "--top-p", "0.9",
                "--top-k", "0", "--max-new-tokens", "10", "--num-return-sequences", "2", "--seed", "7");
        List<String> lines = printed.lines().toList();
        assertThat(lines).hasSize(2);
        for (int i = 0; i < 2; i++)
            assertThat("[" + (i + 1) + "] 明月" + o.get("choices").get(i).get("text").asText()).isEqualTo(lines.get(i));
        JsonNode again = ok("/v1/completions", "{\"prompt\":\"明月\",\"max_tokens\":10,\"temperature\":0.8,\"top_p\":0.9,"
                + "\"n\":2,\"seed\":7}");
        assertThat(again.get("choices")).isEqualTo(o.get("choices"));
    }

    @Test
    void tokenIdsEchoAndBatchOfPrompts() throws Exception {
        int[] ids = Tokenizer.load(MODEL).encode("床前明月光", false);
        JsonNode text = ok("/v1/completions", "{\"prompt\":\"床前明月光\",\"max_tokens\":6,\"temperature\":0}");
        JsonNode byIds = ok("/v1/completions", "{\"prompt\":" + JSON.writeValueAsString(ids) + ",\"max_tokens\":6,\"temperature\":0}");
        assertThat(byIds.get("choices").get(0).get("text")).isEqualTo(text.get("choices").get(0).get("text"));
        JsonNode echo = ok("/v1/completions", "{\"prompt\":\"床前明月光\",\"max_tokens\":6,\"temperature\":0,\"echo\":true}");
        assertThat(echo.get("choices").get(0).get("text").asText())
                .isEqualTo("床前明月光" + text.get("choices").get(0).get("text").asText());
        JsonNode two = ok("/v1/completions", "{\"prompt\":[\"床前明月光\",\"明月\"],\"max_tokens\":6,\"temperature\":0}");
        assertThat(two.get("choices")).hasSize(2);
        assertThat(two.get("choices").get(0).get("text")).isEqualTo(text.get("choices").get(0).get("text"));
        assertThat(two.get("choices").get(1).get("index").asInt()).isEqualTo(1);
    }

    @Test
    void streamingSendsEventsEndingWithDone() throws Exception {
        String body = "{\"prompt\":\"床前明月光\",\"max_tokens\":20,\"temperature\":0,\"stream\":true,"
                + "\"stream_options\":{\"include_usage\":true}}";
        HttpResponse<String> r = post("/v1/completions", body, KEY);
        assertThat(r.statusCode()).isEqualTo(200);
        assertThat(r.headers().firstValue("Content-Type").orElse("")).startsWith("text/event-stream");
        List<String> events = r.body().lines().filter(l -> !l.isEmpty()).toList();
        assertThat(events).allMatch(l -> l.startsWith("data: "));
        assertThat(events.getLast()).isEqualTo("data: [DONE]");
        StringBuilder text = new StringBuilder();
        String finish = null;
        JsonNode usage = null;
        for (String e : events.subList(0, events.size() - 1)) {
            JsonNode c = JSON.readTree(e.substring(6));
            if (c.get("choices").isEmpty()) {
                usage = c.get("usage");
                continue;
            }
            text.append(c.get("choices").get(0).get("text").asText());
            if (!c.get("choices").get(0).get("finish_reason").isNull()) finish = c.get("choices").get(0).get("finish_reason").asText();
        }
        assertThat(events.size()).isGreaterThan(4);
        JsonNode whole = ok("/v1/completions", "{\"prompt\":\"床前明月光\",\"max_tokens\":20,\"temperature\":0}");
        assertThat(text.toString()).isEqualTo(whole.get("choices").get(0).get("text").asText());
        assertThat(finish).isEqualTo(whole.get("choices").get(0).get("finish_reason").asText());
        assertThat(usage).isEqualTo(whole.get("usage"));
    }

    @Test
    void stopStringEndsTheText() throws Exception {
        JsonNode whole = ok("/v1/completions", "{\"prompt\":\"床前明月光\",\"max_tokens\":20,\"temperature\":0}");
        String text = whole.get("choices").get(0).get("text").asText();
        assertThat(text.length()).isGreaterThan(3);
        String stop = text.substring(2, 4);
        JsonNode stopped = ok("/v1/completions", "{\"prompt\":\"床前明月光\",\"max_tokens\":20,\"temperature\":0,\"stop\":["
                + JSON.writeValueAsString(stop) + "]}");
        JsonNode ch = stopped.get("choices").get(0);
        assertThat(ch.get("text").asText()).isEqualTo(text.substring(0, text.indexOf(stop)));
        assertThat(ch.get("finish_reason").asText()).isEqualTo("stop");
    }

    @Test
    void concurrentRequestsDecodeTogetherAndMatchOneAtATime() throws Exception {
        String[] prompts = {"床前明月光", "明月光", "举头望明月", "低头思故乡", "疑是地上霜", "白日依山尽"};
        String[] alone = new String[prompts.length];
        for (int i = 0; i < prompts.length; i++)
            alone[i] = ok("/v1/completions", "{\"model\":\"" + (i % 2 == 0 ? "tiny" : "poem") + "\",\"prompt\":\""
                    + prompts[i] + "\",\"max_tokens\":" + (8 + 3 * i) + ",\"temperature\":0}").get("choices").get(0).get("text").asText();
        List<CompletableFuture<HttpResponse<String>>> fs = new ArrayList<>();
        for (int i = 0; i < prompts.length; i++) {
            HttpRequest req = HttpRequest.newBuilder(URI.create(base + "/v1/completions"))
                    .header("Authorization", "Bearer " + KEY).POST(HttpRequest.BodyPublishers.ofString(
                            "{\"model\":\"" + (i % 2 == 0 ? "tiny" : "poem") + "\",\"prompt\":\"" + prompts[i]
                                    + "\",\"max_tokens\":" + (8 + 3 * i) + ",\"temperature\":0}")).build();
            fs.add(http.sendAsync(req, HttpResponse.BodyHandlers.ofString()));
        }
        for (int i = 0; i < prompts.length; i++) {
            HttpResponse<String> r = fs.get(i).get();
            assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
            assertThat(JSON.readTree(r.body()).get("choices").get(0).get("text").asText()).as(prompts[i]).isEqualTo(alone[i]);
        }
    }

    @Test
    void chatUsesTheTemplateAndNeedsOne() throws Exception {
        String saved = base;
        try {
            base = "http://127.0.0.1:" + chat.port();
            JsonNode o = ok("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"床前明月光\"}],"
                    + "\"max_tokens\":8,\"temperature\":0}");
            assertThat(o.get("object").asText()).isEqualTo("chat.completion");
            JsonNode msg = o.get("choices").get(0).get("message");
            assertThat(msg.get("role").asText()).isEqualTo("assistant");
            JsonNode same = ok("/v1/completions", "{\"prompt\":" + JSON.writeValueAsString("user：床前明月光\nassistant：")
                    + ",\"max_tokens\":8,\"temperature\":0}");
            assertThat(msg.get("content").asText()).isEqualTo(same.get("choices").get(0).get("text").asText());
            HttpResponse<String> s = post("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"床前明月光\"}],"
                    + "\"max_tokens\":8,\"temperature\":0,\"stream\":true}", null);
            List<String> ev = s.body().lines().filter(l -> !l.isEmpty()).toList();
            assertThat(ev.getLast()).isEqualTo("data: [DONE]");
            JsonNode first = JSON.readTree(ev.getFirst().substring(6));
            assertThat(first.get("object").asText()).isEqualTo("chat.completion.chunk");
            assertThat(first.get("choices").get(0).get("delta").get("role").asText()).isEqualTo("assistant");
            StringBuilder sb = new StringBuilder();
            for (String e : ev.subList(0, ev.size() - 1))
                sb.append(JSON.readTree(e.substring(6)).get("choices").get(0).path("delta").path("content").asText());
            assertThat(sb.toString()).isEqualTo(msg.get("content").asText());
        } finally {
            base = saved;
        }
        JsonNode e = error(400, "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
        assertThat(e.get("message").asText()).contains("no chat template");
    }

    @Test
    void llamaFamilyServesThroughTheSameSeam() throws Exception {
        // the tiny random Qwen2 of golden/llama with the WordPiece vocabulary of tiny_wp (64 ids < its 181 rows),
        // and its golden peft adapter cut to the base's vocabulary (applied unmerged in the base's batch)
        Path dir = tmp.resolve("qwen2");
        Files.createDirectories(dir);
        Path golden = Path.of("src/test/resources/golden/llama/qwen2_tied_yarn");
        Files.copy(golden.resolve("config.json"), dir.resolve("config.json"));
        Files.copy(golden.resolve("model.safetensors"), dir.resolve("model.safetensors"));
        Files.copy(MODEL.resolve("vocab.txt"), dir.resolve("vocab.txt"));
        Path adapter = Adapters.writeWithVocab(Path.of("src/test/resources/golden/peft_llama/qwen2_tied_yarn"),
                tmp.resolve("qwen2-adapter"), 181, 40);
        try (Serve q = Serve.start(new ServeOptions(dir, "qwen", Map.of("qa", adapter), "127.0.0.1", 0, null, 4, 0,
                4096, 0, 60, 2, 8, null, 1))) {
            assertThat(q.sameBatch("qa", "qwen")).isTrue();
            String saved = base;
            base = "http://127.0.0.1:" + q.port();
            try {
                List<CompletableFuture<HttpResponse<String>>> fs = new ArrayList<>();
                for (String m : List.of("qwen", "qa"))
                    fs.add(http.sendAsync(HttpRequest.newBuilder(URI.create(base + "/v1/completions"))
                            .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"" + m + "\",\"prompt\":\"床前明月光\","
                                    + "\"max_tokens\":10,\"min_tokens\":10,\"temperature\":0}")).build(), HttpResponse.BodyHandlers.ofString()));
                for (int i = 0; i < 2; i++) {
                    JsonNode o = JSON.readTree(fs.get(i).get().body());
                    List<String> flags = new ArrayList<>(List.of("generate", "--model", dir.toString(), "--threads", "1",
                            "--prompt", "床前明月光", "--max-new-tokens", "10", "--min-new-tokens", "10"));
                    if (i == 1) flags.addAll(List.of("--adapter", adapter.toString()));
                    PrintStream old = System.out;
                    ByteArrayOutputStream out = new ByteArrayOutputStream();
                    System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
                    try {
                        assertThat(Main.execute(flags.toArray(String[]::new))).isZero();
                    } finally {
                        System.setOut(old);
                    }
                    assertThat("床前明月光" + o.get("choices").get(0).get("text").asText()).as(o.toString())
                            .isEqualTo(out.toString(StandardCharsets.UTF_8).strip());
                    assertThat(o.get("usage").get("completion_tokens").asInt()).isEqualTo(10);
                }
            } finally {
                base = saved;
            }
        }
    }

    @Test
    void authIsRequired() throws Exception {
        HttpResponse<String> none = post("/v1/completions", "{\"prompt\":\"春\"}", null);
        assertThat(none.statusCode()).isEqualTo(401);
        assertThat(JSON.readTree(none.body()).get("error").get("code").asText()).isEqualTo("invalid_api_key");
        assertThat(post("/v1/completions", "{\"prompt\":\"春\"}", "wrong").statusCode()).isEqualTo(401);
        HttpResponse<String> models = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/models")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(models.statusCode()).isEqualTo(401);
        HttpResponse<String> page = http.send(HttpRequest.newBuilder(URI.create(base + "/")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(page.statusCode()).isEqualTo(200);   // the page itself holds no data; its calls send the key
    }

    @Test
    void badRequestsGetOpenAiErrors() throws Exception {
        assertThat(error(400, "/v1/completions", "{\"prompt\": ").get("message").asText()).contains("not valid JSON");
        error(400, "/v1/completions", "[1,2]");
        assertThat(error(400, "/v1/completions", "{\"prompt\":\"春\",\"temprature\":0}").get("param").asText())
                .isEqualTo("temprature");
        assertThat(error(400, "/v1/completions", "{\"prompt\":\"春\",\"max_tokens\":61}").get("message").asText())
                .contains("at most 60");
        assertThat(error(400, "/v1/completions", "{\"prompt\":\"春\",\"n\":3}").get("param").asText()).isEqualTo("n");
        assertThat(error(400, "/v1/completions", "{\"prompt\":\"春\",\"temperature\":\"hot\"}").get("param").asText())
                .isEqualTo("temperature");
        assertThat(error(400, "/v1/completions", "{\"prompt\":\"" + "春".repeat(41) + "\"}").get("message").asText())
                .contains("at most 40");
        assertThat(error(400, "/v1/completions", "{\"prompt\":[1, 99999]}").get("message").asText()).contains("vocabulary");
        assertThat(error(400, "/v1/completions", "{\"prompt\":\"春\",\"logprobs\":3}").get("param").asText()).isEqualTo("logprobs");
        error(400, "/v1/completions", "{\"max_tokens\":3}");
        assertThat(error(404, "/v1/completions", "{\"prompt\":\"春\",\"model\":\"../etc/passwd\"}").get("code").asText())
                .isEqualTo("model_not_found");
        assertThat(error(413, "/v1/completions", "{\"prompt\":\"" + "a".repeat(5000) + "\"}").get("code").asText())
                .isEqualTo("request_too_large");
        error(404, "/v1/nothing", "{}");
        // the server is still fine
        assertThat(ok("/v1/completions", "{\"prompt\":\"春\",\"max_tokens\":2}").get("choices")).hasSize(1);
    }
}
