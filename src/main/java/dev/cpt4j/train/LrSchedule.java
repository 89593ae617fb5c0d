package dev.cpt4j.train;

import dev.cpt4j.UserError;

/**
 * Learning-rate multipliers as pure functions of the optimizer step, exactly as transformers' {@code get_scheduler}
 * computes them ({@code optimization.py}: {@code _get_linear_schedule_with_warmup_lr_lambda}, cosine with
 * {@code num_cycles = 0.5}, constant, constant with warm-up). {@link #factor(long)} of step {@code s} (0-based) is
 * the multiplier HF's {@code LambdaLR} applies during optimizer step {@code s}; a group's learning rate is its base
 * learning rate times this factor.
 *
 * @param type        the schedule shape
 * @param warmupSteps linear warm-up length (already resolved, see {@link #resolveWarmup})
 * @param totalSteps  the number of optimizer steps of the run ({@code max_steps})
 */
public record LrSchedule(Type type, int warmupSteps, int totalSteps) {

    /** The schedule names of {@code --lr_scheduler_type}, as transformers spells them. */
    public enum Type {
        LINEAR("linear"), COSINE("cosine"), CONSTANT("constant"), CONSTANT_WITH_WARMUP("constant_with_warmup");

        private final String hfName;

        Type(String hfName) {
            this.hfName = hfName;
        }

        public String hfName() {
            return hfName;
        }

        /** Parses transformers' name ({@code cosine}, {@code constant_with_warmup}, …). */
        public static Type parse(String s) {
            for (Type t : values()) if (t.hfName.equalsIgnoreCase(s) || t.name().equalsIgnoreCase(s)) return t;
            throw new UserError("--lr_scheduler_type '" + s + "' is not supported; use one of linear, cosine, "
                    + "constant, constant_with_warmup");
        }
    }

    public LrSchedule {
        if (type == null) throw new UserError("--lr_scheduler_type must be given");
        if (warmupSteps < 0) throw new UserError("--warmup_steps must be >= 0, got " + warmupSteps);
        if (totalSteps < 1) throw new UserError("the run must have at least one optimizer step (--max_steps), got " + totalSteps);
    }

    /**
     * Warm-up length as HF {@code TrainingArguments.get_warmup_steps}: {@code warmupSteps} when positive, else
     * {@code ceil(warmupRatio × totalSteps)} (computed in double, as Python does).
     */
    public static int resolveWarmup(int warmupSteps, double warmupRatio, int totalSteps) {
        if (warmupSteps > 0) return warmupSteps;
        return (int) Math.ceil(totalSteps * warmupRatio);
    }

    /** Learning-rate multiplier during optimizer step {@code step} (0-based; steps past the end keep going as HF does). */
    public double factor(long step) {
        if (type == Type.CONSTANT) return 1.0;
        if (step < warmupSteps) return (double) step / (double) Math.max(1, warmupSteps);
        return switch (type) {
            case CONSTANT_WITH_WARMUP -> 1.0;
            case LINEAR -> Math.max(0.0, (double) (totalSteps - step) / (double) Math.max(1, totalSteps - warmupSteps));
            case COSINE -> {
                double progress = (double) (step - warmupSteps) / (double) Math.max(1, totalSteps - warmupSteps);
                // num_cycles = 0.5: math.pi * float(num_cycles) * 2.0 * progress
                yield Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * 0.5 * 2.0 * progress)));
            }
            case CONSTANT -> 1.0;
        };
    }
}
