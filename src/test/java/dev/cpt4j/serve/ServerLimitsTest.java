package dev.cpt4j.serve;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cpt4j.model.StepModel;
import dev.cpt4j.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Requests in flight (429 when full), a model call that throws (500, and the server goes on), and draining (503
 * for new requests while the ones in flight finish), on a stand-in model whose decode steps the test releases one
 * by one.
 */
class ServerLimitsTest {
    static final ObjectMapper JSON = new ObjectMapper();
    final HttpClient http = HttpClient.newHttpClient();

    /** 8 ids; always prefers token (last + 1) % 8; each next() waits for a permit; token 7 in a prompt makes it throw. */
    static final class GatedModel implements StepModel {
        final Semaphore gate = new Semaphore(0);
        final float[] logits = new float[2 * 8];
        final int[] last = new int[2];
        volatile boolean poisoned;

        public int vocabSize() { return 8; }
        public int contextLength() { return 64; }
        public int maxSequences() { return 2; }
        public int maxLength() { return 64; }
        public float[] prefill(int[] prompt, int numSeq) { throw new UnsupportedOperationException(); }

        public float[] prefillSlot(int slot, int[] prompt) {
            for (int t : prompt) if (t == 7) throw new IllegalStateException("poisoned prompt");
            set(slot, prompt[prompt.length - 1]);
            return logits;
        }

        public void release(int slot) {}

        public float[] next(int[] lastTokens, boolean[] active) {
            try {
                if (!gate.tryAcquire(60, TimeUnit.SECONDS)) throw new IllegalStateException("test gate never opened");
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
            for (int s = 0; s < 2; s++) if (active[s]) set(s, lastTokens[s]);
            return logits;
        }

        private void set(int slot, int tok) {
            java.util.Arrays.fill(logits, slot * 8, slot * 8 + 8, 0f);
            logits[slot * 8 + (tok + 1) % 7] = 5f;
        }
    }

    static final Tokenizer LETTERS = new Tokenizer() {
        public int[] encode(String text, boolean special) { return text.chars().map(c -> (c - 'a') & 7).toArray(); }
        public String decode(int[] ids) {
            StringBuilder sb = new StringBuilder();
            for (int id : ids) sb.append((char) ('a' + id));
            return sb.toString();
        }
        public int vocabSize() { return 8; }
        public int tokenToId(String t) { return -1; }
        public String fingerprint() { return "letters"; }
    };

    HttpResponse<String> post(int port, String body) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/completions"))
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    CompletableFuture<HttpResponse<String>> postAsync(int port, String body) {
        return http.sendAsync(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/completions"))
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void fullMeans429ThrowingModelMeans500DrainFinishesInFlight() throws Exception {
        GatedModel model = new GatedModel();
        Engine engine = new Engine(model, LETTERS::decode, "test-engine");
        ServeOptions o = new ServeOptions(Path.of("unused"), "m", Map.of(), "127.0.0.1", 0, null, 2, 0, 4096, 0, 16, 2,
                1, null, 1);
        OpenAiServer server = new OpenAiServer(o, List.of(new OpenAiServer.Served("m", "m", engine, null, LETTERS,
                new int[0], null)));
        int port = server.port();
        try {
            // one request in flight (its decode steps wait for the gate): a second one is turned away with 429
            CompletableFuture<HttpResponse<String>> first = postAsync(port, "{\"prompt\":\"abc\",\"max_tokens\":4,\"temperature\":0}");
            waitFor(() -> server.inFlight() == 1);
            HttpResponse<String> full = post(port, "{\"prompt\":\"abc\",\"max_tokens\":4}");
            assertThat(full.statusCode()).isEqualTo(429);
            assertThat(full.headers().firstValue("Retry-After")).isPresent();
            assertThat(JSON.readTree(full.body()).get("error").get("code").asText()).isEqualTo("rate_limit_exceeded");
            model.gate.release(3);
            HttpResponse<String> r = first.get(20, TimeUnit.SECONDS);
            assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
            // prompt "abc" = ids 0 1 2; the model continues 3 4 5 6
            assertThat(JSON.readTree(r.body()).get("choices").get(0).get("text").asText()).isEqualTo("defg");

            // a model call that throws: 500 with an error object, and the next request is served
            HttpResponse<String> bad = post(port, "{\"prompt\":\"h\",\"max_tokens\":2}");
            assertThat(bad.statusCode()).isEqualTo(500);
            assertThat(JSON.readTree(bad.body()).get("error").get("message").asText()).contains("poisoned prompt");
            model.gate.release(1);
            HttpResponse<String> after = post(port, "{\"prompt\":\"a\",\"max_tokens\":2,\"temperature\":0}");
            assertThat(JSON.readTree(after.body()).get("choices").get(0).get("text").asText()).isEqualTo("bc");

            // drain: the request in flight finishes, a new one is refused
            CompletableFuture<HttpResponse<String>> inFlight = postAsync(port, "{\"prompt\":\"a\",\"max_tokens\":3,\"temperature\":0,\"stream\":true}");
            waitFor(() -> server.inFlight() == 1);
            Thread drainer = Thread.ofPlatform().start(() -> server.drain(20));
            Thread.sleep(100);
            HttpResponse<String> refused = post(port, "{\"prompt\":\"a\",\"max_tokens\":1}");
            assertThat(refused.statusCode()).isEqualTo(503);
            model.gate.release(2);
            HttpResponse<String> done = inFlight.get(20, TimeUnit.SECONDS);
            assertThat(done.statusCode()).isEqualTo(200);
            assertThat(done.body().strip()).endsWith("data: [DONE]");
            drainer.join(20_000);
            assertThat(drainer.isAlive()).isFalse();
        } finally {
            server.drain(0);
            engine.close();
        }
    }

    static void waitFor(java.util.function.BooleanSupplier c) throws InterruptedException {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!c.getAsBoolean() && System.nanoTime() < until) Thread.sleep(10);
        assertThat(c.getAsBoolean()).as("condition within 20 s").isTrue();
    }

    @Test
    void benchServeDecodesEveryRequestToItsLength() throws Exception {
        var r = ServeBench.run(OpenAiServerTest.MODEL, 3, 5, 1, "床前明月光");
        for (String phase : new String[] {"one_at_a_time", "concurrent"}) {
            assertThat(r.get(phase).get("requests").asInt()).isEqualTo(3);
            assertThat(r.get(phase).get("tokens").asLong()).as(phase).isEqualTo(15);   // min_tokens = max_tokens
            assertThat(r.get(phase).get("p95").asDouble()).isGreaterThanOrEqualTo(r.get(phase).get("p50").asDouble());
        }
    }

    @Test
    void stopHoldsBackAPartialMatch() {
        assertThat(Engine.stopPrefix("hello wor", "world")).isEqualTo(3);
        assertThat(Engine.stopPrefix("hello", "xyz")).isZero();
    }
}
