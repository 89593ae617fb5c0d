package dev.cpt4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cpt4j.hf.HfCheckpoints;
import dev.cpt4j.hf.PeftAdapters;
import dev.cpt4j.io.DType;
import dev.cpt4j.model.Gpt2Config;
import dev.cpt4j.model.Gpt2Model;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.cpu.Gemm;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code cpt4j train} end to end with the recipe's flags on a tiny GPT-2 folder (weights written with HfCheckpoints,
 * a BERT-style vocab.txt) and a few lines of Chinese text: checkpoints, the peft adapter, tokenizer files, metrics,
 * resume after losing the last checkpoint, and refusal of a foreign non-empty output folder.
 */
class TrainEndToEndTest {
    static final String CHARS = "的一是了我不人在他有这个上们来到时大地为子中你说生国年着就那和要她出也得里后自以会";

    /** A tiny tied GPT-2 folder with a vocab.txt of 48 tokens (7 specials/punctuation + 41 characters). */
    static Path tinyModel(Path dir, int modelVocab) throws IOException {
        Files.createDirectories(dir);
        List<String> vocab = new ArrayList<>(List.of("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "，", "。"));
        CHARS.codePoints().forEach(c -> vocab.add(Character.toString(c)));
        Files.write(dir.resolve("vocab.txt"), vocab, StandardCharsets.UTF_8);
        Gpt2Config cfg = Gpt2Config.of(modelVocab, 32, 16, 2, 2);
        try (Parallel par = new Parallel(1)) {
            Gpt2Model m = new Gpt2Model(cfg, new Gemm(par), par, 1, 1, false);
            m.initRandom(3);
            HfCheckpoints.save(dir, cfg, m.layout(), m.params(), DType.F32);
        }
        return dir;
    }

    static Path corpus(Path dir) throws IOException {
        Files.createDirectories(dir);
        List<String> lines = new ArrayList<>();
        java.util.SplittableRandom r = new java.util.SplittableRandom(5);
        for (int i = 0; i < 60; i++) {
            StringBuilder sb = new StringBuilder();
            int n = 5 + r.nextInt(20);
            for (int k = 0; k < n; k++) sb.appendCodePoint(CHARS.codePointAt(r.nextInt(CHARS.length())));
            sb.append(i % 2 == 0 ? "。" : "，");
            lines.add(sb.toString());
        }
        Files.write(dir.resolve("corpus.txt"), lines, StandardCharsets.UTF_8);
        return dir;
    }

    static String[] seedArgs(Path model, Path data, Path cache, Path out, String... extra) {
        String s = "train --deepspeed ds_zero2_no_offload.json --model_name_or_path " + model + " --tokenizer_name_or_path "
                + model + " --dataset_dir " + data + " --data_cache_dir " + cache + " --validation_split_percentage 0.05 "
                + "--per_device_train_batch_size 4 --per_device_eval_batch_size 2 --do_train --seed 11 --fp16 "
                + "--max_steps 6 --lr_scheduler_type cosine --learning_rate 2e-3 --warmup_ratio 0.05 --weight_decay 0.01 "
                + "--logging_strategy steps --logging_steps 2 --save_strategy steps --save_total_limit 2 --save_steps 2 "
                + "--gradient_accumulation_steps 1 --preprocessing_num_workers 1 --block_size 16 --output_dir " + out
                + " --overwrite_output_dir --ddp_timeout 30000 --logging_first_step True --lora_rank 4 --lora_alpha 16 "
                + "--trainable c_attn --modules_to_save transformer.wte,lm_head --lora_dropout 0.05 --torch_dtype float16 "
                + "--gradient_checkpointing --ddp_find_unused_parameters False --threads 1 --do_eval";
        List<String> args = new ArrayList<>(List.of(s.split(" ")));
        args.addAll(List.of(extra));
        return args.toArray(String[]::new);
    }

    record Run(int code, String err) {}

    static Run run(String... args) {
        PrintStream oldErr = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        int code;
        try {
            code = Main.execute(args);
        } finally {
            System.setErr(oldErr);
        }
        return new Run(code, err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void recipeFlagsTrainCheckpointExportAndResume(@TempDir Path tmp) throws IOException {
        Path model = tinyModel(tmp.resolve("model"), 40);
        Path data = corpus(tmp.resolve("data"));
        Path out = tmp.resolve("out");
        Run r = run(seedArgs(model, data, tmp.resolve("cache"), out));
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err()).contains("--fp16: cpt4j trains in fp32").contains("resized the embeddings from 40 to 48")
                .contains("two separate copies").contains("peak memory");
        // save_total_limit 2 keeps the last two of checkpoint-2/4/6
        assertThat(out.resolve("checkpoint-2")).doesNotExist();
        assertThat(out.resolve("checkpoint-4")).isDirectory();
        assertThat(out.resolve("checkpoint-6")).isDirectory();
        for (String f : List.of("adapter_config.json", "adapter_model.safetensors", "vocab.txt", "metrics.jsonl", "loss.png"))
            assertThat(out.resolve(f)).isRegularFile();
        PeftAdapters.Adapter a = PeftAdapters.read(out);
        assertThat(a.config().r()).isEqualTo(4);
        assertThat(a.config().fanInFanOut()).isTrue();
        assertThat(a.config().baseModelNameOrPath()).isEqualTo(model.toString());
        assertThat(a.tensors().keySet()).containsExactlyInAnyOrder(
                "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight",
                "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight",
                "base_model.model.transformer.h.1.attn.c_attn.lora_A.weight",
                "base_model.model.transformer.h.1.attn.c_attn.lora_B.weight",
                "base_model.model.transformer.wte.weight", "base_model.model.lm_head.weight");
        assertThat(a.tensors().get("base_model.model.transformer.wte.weight").shape()).containsExactly(48, 16);
        assertThat(a.tensors().get("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight").data())
                .as("B moved away from its zero init").isNotEqualTo(new float[48 * 4]);
        assertThat(Files.readString(out.resolve("metrics.jsonl"))).contains("eval_loss");
        byte[] uninterrupted = Files.readAllBytes(out.resolve("adapter_model.safetensors"));

        // lose the last checkpoint (as if killed after checkpoint-4), resume: the same final adapter, bit for bit
        dev.cpt4j.io.AtomicFiles.deleteTree(out.resolve("checkpoint-6"));
        Run resumed = run(seedArgs(model, data, tmp.resolve("cache"), out, "--resume_from_checkpoint", "true"));
        assertThat(resumed.code()).as(resumed.err()).isZero();
        assertThat(resumed.err()).contains("resumed from").contains("using prepared data");
        assertThat(Files.readAllBytes(out.resolve("adapter_model.safetensors"))).isEqualTo(uninterrupted);
    }

    @Test
    void fullFineTuningWritesAnHfFolder(@TempDir Path tmp) throws IOException {
        Path model = tinyModel(tmp.resolve("model"), 48);
        Path data = corpus(tmp.resolve("data"));
        Path out = tmp.resolve("out");
        Run r = run("train", "--model_name_or_path", model.toString(), "--dataset_dir", data.toString(),
                "--output_dir", out.toString(), "--block_size", "16", "--per_device_train_batch_size", "2",
                "--max_steps", "3", "--learning_rate", "1e-3", "--threads", "1", "--save_steps", "0");
        assertThat(r.code()).as(r.err()).isZero();
        HfCheckpoints.ModelDir back = HfCheckpoints.loadModelDir(out);
        assertThat(back.config().vocabSize()).isEqualTo(48);
        assertThat(out.resolve("vocab.txt")).isRegularFile();
        assertThat(data.resolve(".cpt4j-cache")).as("default data cache").isDirectory();
    }

    @Test
    void fromScratchWithConfigName(@TempDir Path tmp) throws IOException {
        Path model = tinyModel(tmp.resolve("model"), 48);           // only its vocab.txt is used
        Path data = corpus(tmp.resolve("data"));
        Path cfg = tmp.resolve("config.json");
        Files.writeString(cfg, "{\"model_type\":\"gpt2\",\"vocab_size\":10,\"n_positions\":16,\"n_embd\":8,"
                + "\"n_layer\":1,\"n_head\":2}");
        Path out = tmp.resolve("out");
        Run r = run("train", "--config_name", cfg.toString(), "--tokenizer_name_or_path", model.resolve("vocab.txt").toString(),
                "--dataset_dir", data.toString(), "--output_dir", out.toString(), "--per_device_train_batch_size", "2",
                "--max_steps", "2", "--threads", "1");
        assertThat(r.code()).as(r.err()).isZero();
        HfCheckpoints.ModelDir back = HfCheckpoints.loadModelDir(out);
        assertThat(back.config().vocabSize()).as("sized to the tokenizer").isEqualTo(48);
        assertThat(back.config().contextLength()).isEqualTo(16);
        assertThat(out.resolve("vocab.txt")).isRegularFile();
    }

    @Test
    void refusesAForeignNonEmptyOutputDir(@TempDir Path tmp) throws IOException {
        Path model = tinyModel(tmp.resolve("model"), 48);
        Path data = corpus(tmp.resolve("data"));
        Path out = Files.createDirectories(tmp.resolve("out"));
        Files.writeString(out.resolve("notes.txt"), "mine");
        List<String> args = new ArrayList<>(List.of(seedArgs(model, data, tmp.resolve("cache"), out)));
        args.remove("--overwrite_output_dir");
        Run r = run(args.toArray(String[]::new));
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains("not empty").contains("--overwrite_output_dir");
        assertThat(Files.readString(out.resolve("notes.txt"))).isEqualTo("mine");
        assertThat(tmp.resolve("cache")).doesNotExist();

        String[] longer = seedArgs(model, data, tmp.resolve("cache"), tmp.resolve("out2"));
        longer[List.of(longer).indexOf("--block_size") + 1] = "64";
        Run tooLong = run(longer);
        assertThat(tooLong.code()).isEqualTo(2);
        assertThat(tooLong.err()).contains("--block_size 64").contains("32");
    }

    /** {@code args} with the value after {@code flag} replaced (picocli refuses a repeated option). */
    static String[] with(String[] args, String flag, String value) {
        String[] out = args.clone();
        int i = List.of(out).indexOf(flag);
        if (i < 0) {
            List<String> l = new ArrayList<>(List.of(out));
            l.add(flag);
            l.add(value);
            return l.toArray(String[]::new);
        }
        out[i + 1] = value;
        return out;
    }

    /**
     * Issue 12 item 2: every checkpoint holds the peft adapter (usable as --adapter), and a run whose last checkpoint
     * exists but whose final files do not is finished by resuming: the export only, exit 0, the same bytes.
     */
    @Test
    void checkpointsHoldTheAdapterAndACompletedRunIsFinishedByResuming(@TempDir Path tmp) throws IOException {
        Path model = tinyModel(tmp.resolve("model"), 40);
        Path data = corpus(tmp.resolve("data"));
        Path out = tmp.resolve("out");
        Run r = run(seedArgs(model, data, tmp.resolve("cache"), out));
        assertThat(r.code()).as(r.err()).isZero();
        byte[] adapter = Files.readAllBytes(out.resolve("adapter_model.safetensors"));
        for (String f : List.of("adapter_config.json", "adapter_model.safetensors", "vocab.txt"))
            assertThat(out.resolve("checkpoint-4").resolve(f)).isRegularFile();
        assertThat(Files.readAllBytes(out.resolve("checkpoint-6/adapter_model.safetensors"))).isEqualTo(adapter);
        assertThat(Files.readString(out.resolve("checkpoint-6/adapter_config.json")))
                .isEqualTo(Files.readString(out.resolve("adapter_config.json")));

        // a checkpoint's adapter is an adapter: eval takes it as --adapter
        Path text = data.resolve("corpus.txt");
        PrintStream oldOut = System.out;
        ByteArrayOutputStream stdout = new ByteArrayOutputStream();
        System.setOut(new PrintStream(stdout, true, StandardCharsets.UTF_8));
        Run eval;
        try {
            eval = run("eval", "--model", model.toString(), "--adapter", out.resolve("checkpoint-4").toString(),
                    "--text-file", text.toString(), "--block-size", "16", "--threads", "1", "--json");
        } finally {
            System.setOut(oldOut);
        }
        assertThat(eval.code()).as(eval.err()).isZero();
        assertThat(stdout.toString(StandardCharsets.UTF_8)).contains("\"perplexity\"");

        // killed (or disk full) after the last checkpoint, before the final files: resuming writes them
        for (String f : List.of("adapter_model.safetensors", "adapter_config.json", "vocab.txt")) Files.delete(out.resolve(f));
        Run finish = run(seedArgs(model, data, tmp.resolve("cache"), out, "--resume_from_checkpoint", "true"));
        assertThat(finish.code()).as(finish.err()).isZero();
        assertThat(finish.err()).contains("checkpoint-6 is the last step (6 of 6); training is complete");
        assertThat(Files.readAllBytes(out.resolve("adapter_model.safetensors"))).isEqualTo(adapter);
        assertThat(out.resolve("vocab.txt")).isRegularFile();
    }

    /** Issue 12 item 10: a truncated newest checkpoint is refused by `train`, naming the intact earlier one. */
    @Test
    void aTruncatedNewestCheckpointNamesTheIntactEarlierOne(@TempDir Path tmp) throws IOException {
        Path model = tinyModel(tmp.resolve("model"), 40);
        Path data = corpus(tmp.resolve("data"));
        Path out = tmp.resolve("out");
        assertThat(run(seedArgs(model, data, tmp.resolve("cache"), out)).code()).isZero();
        Path opt = out.resolve("checkpoint-6").resolve("optimizer.safetensors");
        try (var ch = java.nio.channels.FileChannel.open(opt, java.nio.file.StandardOpenOption.WRITE)) {
            ch.truncate(ch.size() / 2);
        }
        Run r = run(seedArgs(model, data, tmp.resolve("cache"), out, "--resume_from_checkpoint", "true"));
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains(opt + " has ").contains("(truncated)")
                .contains("the newest intact checkpoint is " + out.resolve("checkpoint-4"));
        assertThat(r.err().strip().lines().filter(l -> l.startsWith("cpt4j: checkpoint"))).hasSize(1);
    }

    /** Issue 12 items 2 and 3: the final export fails (here: its target is a folder); the message says how to finish. */
    @Test
    void aFailedFinalExportIsFinishedByResuming(@TempDir Path tmp) throws IOException {
        Path model = tinyModel(tmp.resolve("model"), 40);
        Path data = corpus(tmp.resolve("data"));
        Path out = tmp.resolve("out");
        Path blocker = Files.createDirectories(out.resolve("adapter_model.safetensors").resolve("x"));
        Run r = run(seedArgs(model, data, tmp.resolve("cache"), out));
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err()).contains(out.resolve("adapter_model.safetensors") + ": cannot write (")
                .contains("the training itself is complete (" + out.resolve("checkpoint-6") + ")")
                .contains("run the same command with --resume_from_checkpoint true");
        try (var left = Files.list(out)) {
            assertThat(left.map(p -> p.getFileName().toString())).noneMatch(n -> n.startsWith(".tmp") || n.endsWith(".tmp"));
        }
        Files.delete(blocker);
        Files.delete(blocker.getParent());
        Run finish = run(seedArgs(model, data, tmp.resolve("cache"), out, "--resume_from_checkpoint", "true"));
        assertThat(finish.code()).as(finish.err()).isZero();
        assertThat(Files.readAllBytes(out.resolve("adapter_model.safetensors")))
                .isEqualTo(Files.readAllBytes(out.resolve("checkpoint-6/adapter_model.safetensors")));
    }
}
