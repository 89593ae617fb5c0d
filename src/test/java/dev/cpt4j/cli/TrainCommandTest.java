package dev.cpt4j.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cpt4j.UserError;
import dev.cpt4j.train.LrSchedule;
import dev.cpt4j.train.TrainOptions;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class TrainCommandTest {
    private static final dev.cpt4j.model.ModelFamily GPT2 = new dev.cpt4j.model.Gpt2Family();


    /**
     * Everything after run_clm_pt_with_peft.py in the recipe's command (shared/seed blog post), verbatim except
     * {@code $RANDOM}, which the shell would have expanded to an integer.
     */
    static final String SEED_ARGS = "--deepspeed ds_zero2_no_offload.json "
            + "--model_name_or_path IDEA-CCNL/Wenzhong2.0-GPT2-110M-BertTokenizer-chinese "
            + "--tokenizer_name_or_path IDEA-CCNL/Wenzhong2.0-GPT2-110M-BertTokenizer-chinese --dataset_dir data "
            + "--data_cache_dir temp_data_cache_dir --validation_split_percentage 0.001 "
            + "--per_device_train_batch_size 32 --per_device_eval_batch_size 16 --do_train --seed 23514 --fp16 "
            + "--max_steps 2500 --lr_scheduler_type cosine --learning_rate 2e-4 --warmup_ratio 0.05 --weight_decay 0.01 "
            + "--logging_strategy steps --logging_steps 10 --save_strategy steps --save_total_limit 3 --save_steps 50 "
            + "--gradient_accumulation_steps 1 --preprocessing_num_workers 8 --block_size 512 --output_dir output_dir "
            + "--overwrite_output_dir --ddp_timeout 30000 --logging_first_step True --lora_rank 8 --lora_alpha 32 "
            + "--trainable c_attn --modules_to_save transformer.wte,lm_head --lora_dropout 0.05 --torch_dtype float16 "
            + "--gradient_checkpointing --ddp_find_unused_parameters False";

    private static TrainCommand parse(String... args) {
        TrainCommand cmd = new TrainCommand();
        new CommandLine(cmd).parseArgs(args);
        return cmd;
    }

    @Test
    void parsesTheRecipeCommandVerbatim() {
        TrainCommand cmd = parse(SEED_ARGS.split(" "));
        TrainOptions o = cmd.options();
        Path wz = Path.of("IDEA-CCNL/Wenzhong2.0-GPT2-110M-BertTokenizer-chinese");
        assertThat(o.modelNameOrPath()).isEqualTo(wz);
        assertThat(o.tokenizerNameOrPath()).isEqualTo(wz);
        assertThat(o.configName()).isNull();
        assertThat(o.datasetDir()).isEqualTo(Path.of("data"));
        assertThat(o.dataCacheDir()).isEqualTo(Path.of("temp_data_cache_dir"));
        assertThat(o.validationSplit()).isEqualTo(0.001);
        assertThat(o.perDeviceTrainBatchSize()).isEqualTo(32);
        assertThat(o.perDeviceEvalBatchSize()).isEqualTo(16);
        assertThat(o.seed()).isEqualTo(23514);
        assertThat(o.maxSteps()).isEqualTo(2500);
        assertThat(o.lrSchedulerType()).isEqualTo(LrSchedule.Type.COSINE);
        assertThat(o.learningRate()).isEqualTo(2e-4);
        assertThat(o.embeddingLearningRate()).isEqualTo(2e-4);
        assertThat(o.warmupRatio()).isEqualTo(0.05);
        assertThat(o.schedule(o.totalSteps(1_000_000)).warmupSteps()).isEqualTo(125);
        assertThat(o.weightDecay()).isEqualTo(0.01);
        assertThat(o.loggingSteps()).isEqualTo(10);
        assertThat(o.loggingFirstStep()).isTrue();
        assertThat(o.saveTotalLimit()).isEqualTo(3);
        assertThat(o.saveSteps()).isEqualTo(50);
        assertThat(o.gradientAccumulationSteps()).isEqualTo(1);
        assertThat(o.preprocessingNumWorkers()).isEqualTo(8);
        assertThat(o.blockSize()).isEqualTo(512);
        assertThat(o.outputDir()).isEqualTo(Path.of("output_dir"));
        assertThat(o.overwriteOutputDir()).isTrue();
        assertThat(o.lora()).isTrue();
        assertThat(o.loraRank()).isEqualTo(8);
        assertThat(o.loraAlpha()).isEqualTo(32);
        assertThat(o.loraScaling()).isEqualTo(4.0); // the blog's s = 32 / 8
        assertThat(o.trainable()).containsExactly("c_attn");       // as given; the model's family resolves the names
        assertThat(o.modulesToSave()).containsExactly("transformer.wte", "lm_head");
        assertThat(GPT2.resolveLoraSites(o.trainable())).containsExactly("attn.c_attn");
        assertThat(o.loraDropout()).isEqualTo(0.05);
        assertThat(o.gradientCheckpointing()).isTrue();
        assertThat(o.maxGradNorm()).isEqualTo(1.0);
        assertThat(o.baseDtype()).isEqualTo(TrainOptions.BaseDtype.FP32);
        assertThat(o.resumeFromCheckpoint()).isNull();
        assertThat(o.ensureWeightTying()).isFalse();

        List<String> notes = cmd.notes();
        assertThat(notes).hasSize(7);
        assertThat(notes).allSatisfy(n -> assertThat(n).doesNotContain("\n"));
        for (String flag : List.of("--deepspeed", "--fp16", "--ddp_timeout", "--ddp_find_unused_parameters",
                "--torch_dtype", "--logging_strategy", "--save_strategy"))
            assertThat(notes).anySatisfy(n -> assertThat(n).startsWith(flag));
        assertThat(notes).filteredOn(n -> n.startsWith("--fp16")).singleElement().asString().contains("fp32");
    }

    @Test
    void kebabCaseAndNewFlags() {
        TrainOptions o = parse("--model-name-or-path", "m", "--dataset-dir", "d", "--output-dir", "out",
                "--per-device-train-batch-size", "4", "--lora-rank", "16", "--lora-alpha", "16", "--trainable",
                "c_attn,attn.c_proj,c_fc,mlp.c_proj", "--modules-to-save", "wte,lm_head", "--embedding-learning-rate",
                "1e-5", "--use-rslora", "--ensure-weight-tying", "--warmup-steps", "7", "--max-grad-norm", "0",
                "--num-train-epochs", "2", "--resume-from-checkpoint", "true", "--do-eval", "--eval-steps", "20",
                "--base-dtype", "bf16", "--threads", "3", "--lr-scheduler-type", "constant_with_warmup").options();
        assertThat(o.perDeviceTrainBatchSize()).isEqualTo(4);
        assertThat(GPT2.resolveLoraSites(o.trainable())).containsExactly("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj");
        assertThat(GPT2.resolveSavedModules(o.modulesToSave())).containsExactly("transformer.wte", "lm_head");
        assertThat(o.embeddingLearningRate()).isEqualTo(1e-5);
        assertThat(o.useRslora()).isTrue();
        assertThat(o.loraScaling()).isEqualTo(4.0); // 16 / sqrt(16)
        assertThat(o.ensureWeightTying()).isTrue();
        assertThat(o.warmupSteps()).isEqualTo(7);
        assertThat(o.maxGradNorm()).isZero();
        assertThat(o.maxSteps()).isEqualTo(-1);
        assertThat(o.numTrainEpochs()).isEqualTo(2.0);
        assertThat(o.resumeLatest()).isTrue();
        assertThat(o.doEval()).isTrue();
        assertThat(o.evalSteps()).isEqualTo(20);
        assertThat(o.baseDtype()).isEqualTo(TrainOptions.BaseDtype.BF16);
        assertThat(o.threads()).isEqualTo(3);
        assertThat(o.preprocessingNumWorkers()).isEqualTo(3);
        assertThat(o.lrSchedulerType()).isEqualTo(LrSchedule.Type.CONSTANT_WITH_WARMUP);
        assertThat(o.lora()).isTrue();
    }

    @Test
    void configNameTrainsFromScratchWithFullFineTuning() {
        TrainOptions o = parse("--config_name", "cfg.json", "--tokenizer_name_or_path", "tok.json", "--dataset_dir",
                "d", "--output_dir", "o", "--max_steps", "10").options();
        assertThat(o.configName()).isEqualTo(Path.of("cfg.json"));
        assertThat(o.lora()).isFalse();
        assertThat(o.evalSteps()).isEqualTo(o.loggingSteps());
    }

    /** HF Trainer.set_initial_training_values: ceil(epochs × ceil(ceil(blocks / batch) / accumulation)). */
    @Test
    void epochsGiveHfStepCount() {
        TrainOptions o = parse("--model_name_or_path", "m", "--dataset_dir", "d", "--output_dir", "o",
                "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "3", "--num_train_epochs", "2.5").options();
        assertThat(o.totalSteps(50)).isEqualTo(13);   // 13 batches -> 5 updates per epoch -> ceil(12.5)
        assertThat(o.totalSteps(1)).isEqualTo(3);     // 1 batch -> max(1, 1) -> ceil(2.5)
        assertThatThrownBy(() -> o.totalSteps(0)).isInstanceOf(UserError.class).hasMessageContaining("--dataset_dir");
    }

    @Test
    void unknownFlagExitsWith2() {
        PrintStream oldErr = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        int code;
        try {
            code = Main.execute("train", "--model_name_or_path", "m", "--dataset_dir", "d", "--output_dir", "o",
                    "--learning_rat", "1e-4");
        } finally {
            System.setErr(oldErr);
        }
        assertThat(code).isEqualTo(2);
        assertThat(err.toString(StandardCharsets.UTF_8)).contains("--learning_rat");
    }

    @Test
    void badValueNamesTheFlag() {
        assertThatThrownBy(() -> parse("--model_name_or_path", "m", "--dataset_dir", "d", "--output_dir", "o",
                "--validation_split_percentage", "5").options())
                .isInstanceOf(UserError.class).hasMessageContaining("--validation_split_percentage");
        // q_proj is a LLaMA projection: a GPT-2 model refuses it when the family resolves the names
        assertThatThrownBy(() -> GPT2.resolveLoraSites(parse("--model_name_or_path", "m", "--dataset_dir", "d",
                "--output_dir", "o", "--lora_rank", "8", "--trainable", "q_proj").options().trainable()))
                .isInstanceOf(UserError.class).hasMessageContaining("--trainable").hasMessageContaining("c_attn");
        assertThatThrownBy(() -> parse("--model_name_or_path", "m", "--dataset_dir", "d", "--output_dir", "o",
                "--save_strategy", "epoch").options())
                .isInstanceOf(UserError.class).hasMessageContaining("--save_strategy");
        assertThatThrownBy(() -> parse("--dataset_dir", "d", "--output_dir", "o").options())
                .isInstanceOf(UserError.class).hasMessageContaining("--model_name_or_path");
        assertThatThrownBy(() -> parse("--model_name_or_path", "m", "--dataset_dir", "d", "--output_dir", "o",
                "--modules_to_save", "lm_head").options())
                .isInstanceOf(UserError.class).hasMessageContaining("--lora_rank");
    }

    @Test
    void saveStrategyNoTurnsOffIntermediateCheckpoints() {
        TrainCommand cmd = parse("--model_name_or_path", "m", "--dataset_dir", "d", "--output_dir", "o",
                "--save_strategy", "no", "--save_steps", "50");
        assertThat(cmd.options().saveSteps()).isZero();
        assertThat(cmd.notes()).singleElement().asString().startsWith("--save_strategy no");
    }

    /** The recipe's command without the model folder on disk: one clear line, exit 2, nothing written. */
    @Test
    void missingModelFolderFailsClearlyAndWritesNothing(@TempDir Path tmp) {
        Path out = tmp.resolve("out");
        PrintStream oldErr = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        int code;
        try {
            code = Main.execute(("train " + SEED_ARGS.replace("output_dir output_dir", "output_dir " + out)).split(" "));
        } finally {
            System.setErr(oldErr);
        }
        String text = err.toString(StandardCharsets.UTF_8);
        assertThat(code).isEqualTo(2);
        assertThat(text).contains("IDEA-CCNL/Wenzhong2.0-GPT2-110M-BertTokenizer-chinese").contains("does not exist");
        assertThat(text).contains("--fp16: cpt4j trains in fp32");
        assertThat(Files.exists(out)).isFalse();
    }

    /** Issue 12 item 10: a block of one token has no next-token label; --threads 0 is named as --threads. */
    @Test
    void blockSizeOneAndThreadsZeroAreRefusedUpFrontNamingTheFlag() {
        String base = "--model_name_or_path m --dataset_dir d --output_dir o";
        assertThatThrownBy(() -> parse((base + " --block_size 1").split(" ")).options())
                .isInstanceOf(UserError.class).hasMessageContaining("--block_size 1").hasMessageContaining("at least 2 tokens");
        assertThat(parse((base + " --block_size 2").split(" ")).options().blockSize()).isEqualTo(2);
        assertThatThrownBy(() -> parse((base + " --threads 0").split(" ")).options())
                .isInstanceOf(UserError.class).hasMessageStartingWith("--threads must be >= 1")
                .hasMessageNotContaining("preprocessing");
        assertThatThrownBy(() -> parse((base + " --threads 2 --preprocessing_num_workers 0").split(" ")).options())
                .isInstanceOf(UserError.class).hasMessageContaining("--preprocessing_num_workers");
    }
}
