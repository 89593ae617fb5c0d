/**
 * {@code cpt4j serve}: an OpenAI-compatible HTTP server over the family's KV-cache decoder, with a playground and a
 * training dashboard at {@code /}.
 *
 * <ul>
 *   <li>{@link dev.cpt4j.serve.Engine}: continuous batching over one {@link dev.cpt4j.model.StepModel} — a request
 *       joins between two decode steps ({@code prefillSlot}), a finished sequence leaves ({@code release}); each job
 *       picks tokens with its own {@link dev.cpt4j.generate.TokenChooser} and seeded generator, as
 *       {@code generate} does, so temperature 0 gives {@code generate --do-sample false}'s text.</li>
 *   <li>{@link dev.cpt4j.serve.Serve}: loads the model and the {@code --lora-modules} adapters; adapters share the
 *       base's weights and batch, applied unmerged per sequence ({@link dev.cpt4j.model.SlotLora}), or get their own
 *       merged engine when they change more than LoRA pairs and embedding/head copies.</li>
 *   <li>{@link dev.cpt4j.serve.OpenAiServer}: the routes (Javalin on Jetty), request checking ({@code Fields}),
 *       limits, OpenAI-style errors ({@code ApiError}), server-sent events, draining.</li>
 *   <li>{@code ChatTemplate}: tokenizer_config.json's Jinja chat template through Jinjava; {@code Dashboard}: a run's
 *       metrics.jsonl; {@code ServeBench}: {@code cpt4j bench serve}.</li>
 * </ul>
 * What it is not: paged attention, prefix caching, chunked prefill, log probabilities, tools/function calling.
 * It names no architecture: decoders and adapters come through {@link dev.cpt4j.model.ModelFamily}.
 */
package dev.cpt4j.serve;
