package dev.cpt4j.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * {@code cpt4j bench serve}: the same {@code clients} completion requests ({@code maxTokens} new tokens each, eos
 * suppressed by {@code min_tokens} so every request decodes the full length, seeded sampling) sent to an in-process
 * server on loopback, first one at a time, then all at once (continuous batching); reports aggregate completion
 * tokens/s and the p50/p95 request latency of each.
 */
public final class ServeBench {
    private ServeBench() {}

    /** One phase's numbers. */
    public record Phase(int requests, long tokens, double seconds, double tokensPerS, double p50, double p95) {}

    public static ObjectNode run(Path model, int clients, int maxTokens, int threads, String prompt) throws Exception {
        ServeOptions o = new ServeOptions(model, "bench", Map.of(), "127.0.0.1", 0, null, clients, 0, 1 << 20, 0,
                Math.max(maxTokens, 16), 1, clients * 2, null, threads);
        try (Serve serve = Serve.start(o)) {
            String url = "http://127.0.0.1:" + serve.port() + "/v1/completions";
            HttpClient http = HttpClient.newHttpClient();
            List<HttpRequest> reqs = new ArrayList<>();
            for (int i = 0; i < clients; i++) {
                ObjectNode b = OpenAiServer.JSON.createObjectNode();
                b.put("prompt", prompt);
                b.put("max_tokens", maxTokens);
                b.put("min_tokens", maxTokens);
                b.put("temperature", 1.0);
                b.put("top_p", 0.9);
                b.put("seed", i);
                reqs.add(HttpRequest.newBuilder(URI.create(url)).POST(HttpRequest.BodyPublishers.ofString(b.toString())).build());
            }
            send(http, reqs.subList(0, 1));   // warm-up: JIT, first allocation
            Phase serial = phase(http, reqs, false), batched = phase(http, reqs, true);
            ObjectNode out = OpenAiServer.JSON.createObjectNode();
            out.put("model", model.toString());
            out.put("clients", clients);
            out.put("max_tokens", maxTokens);
            out.set("one_at_a_time", OpenAiServer.JSON.valueToTree(serial));
            out.set("concurrent", OpenAiServer.JSON.valueToTree(batched));
            out.put("speedup", batched.tokensPerS() / serial.tokensPerS());
            return out;
        }
    }

    private static Phase phase(HttpClient http, List<HttpRequest> reqs, boolean concurrent) throws Exception {
        double[] lat = new double[reqs.size()];
        long tokens = 0;
        long t0 = System.nanoTime();
        if (concurrent) {
            // one virtual thread per client: all requests are in flight at once, whatever the core count
            try (var clients = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()) {
                List<CompletableFuture<double[]>> fs = new ArrayList<>();
                for (HttpRequest r : reqs) fs.add(CompletableFuture.supplyAsync(() -> timed(http, r), clients));
                for (int i = 0; i < reqs.size(); i++) {
                    double[] x = fs.get(i).get();
                    lat[i] = x[0];
                    tokens += (long) x[1];
                }
            }
        } else {
            for (int i = 0; i < reqs.size(); i++) {
                double[] x = timed(http, reqs.get(i));
                lat[i] = x[0];
                tokens += (long) x[1];
            }
        }
        double s = (System.nanoTime() - t0) / 1e9;
        Arrays.sort(lat);
        return new Phase(reqs.size(), tokens, s, tokens / s, pct(lat, 0.50), pct(lat, 0.95));
    }

    private static double[] timed(HttpClient http, HttpRequest r) {
        try {
            long t = System.nanoTime();
            HttpResponse<String> res = http.send(r, HttpResponse.BodyHandlers.ofString());
            double s = (System.nanoTime() - t) / 1e9;
            if (res.statusCode() != 200) throw new IllegalStateException("HTTP " + res.statusCode() + ": " + res.body());
            JsonNode u = OpenAiServer.JSON.readTree(res.body()).get("usage");
            return new double[] {s, u.get("completion_tokens").asDouble()};
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private static void send(HttpClient http, List<HttpRequest> reqs) {
        for (HttpRequest r : reqs) timed(http, r);
    }

    /** Nearest-rank percentile of sorted values. */
    static double pct(double[] sorted, double q) {
        int i = (int) Math.ceil(q * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }
}
