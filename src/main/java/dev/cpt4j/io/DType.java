package dev.cpt4j.io;

import java.util.Locale;

/**
 * Element types of tensors in checkpoint files, named as safetensors names them. Only the floating-point ones
 * can be read into a {@code float[]}; the others are recognised so that errors can name them.
 */
public enum DType {
    F64(8, true), F32(4, true), F16(2, true), BF16(2, true),
    I64(8, false), I32(4, false), I16(2, false), I8(1, false), U8(1, false), BOOL(1, false);

    private final int bytes;
    private final boolean floating;

    DType(int bytes, boolean floating) {
        this.bytes = bytes;
        this.floating = floating;
    }

    /** Size of one element in bytes. */
    public int bytes() {
        return bytes;
    }

    /** True for the types that convert to {@code float} on read (F64, F32, F16, BF16). */
    public boolean isFloating() {
        return floating;
    }

    /** The safetensors dtype string for {@code s}, or null when it is not one cpt4j knows. */
    public static DType fromSafetensors(String s) {
        try {
            return valueOf(s.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    /** The dtype name transformers writes in config.json ({@code torch_dtype}). */
    public String torchName() {
        return switch (this) {
            case F64 -> "float64";
            case F32 -> "float32";
            case F16 -> "float16";
            case BF16 -> "bfloat16";
            case I64 -> "int64";
            case I32 -> "int32";
            case I16 -> "int16";
            case I8 -> "int8";
            case U8 -> "uint8";
            case BOOL -> "bool";
        };
    }

    /** Parses a user-facing name: {@code f32|float32|fp32}, {@code f16|float16|fp16|half}, {@code bf16|bfloat16}. */
    public static DType parseFloat(String s) {
        return switch (s.toLowerCase(Locale.ROOT)) {
            case "f32", "float32", "fp32", "float" -> F32;
            case "f16", "float16", "fp16", "half" -> F16;
            case "bf16", "bfloat16" -> BF16;
            default -> throw new dev.cpt4j.UserError("unknown dtype '" + s + "'; use float32, float16 or bfloat16");
        };
    }

    /** Rounds {@code f} to bfloat16 (round to nearest even, as torch's {@code .to(torch.bfloat16)}) and returns its bits. */
    public static short floatToBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) return (short) ((bits >>> 16) | 0x40);  // keep a quiet NaN
        int rounded = bits + 0x7FFF + ((bits >>> 16) & 1);
        return (short) (rounded >>> 16);
    }

    public static float bf16ToFloat(short b) {
        return Float.intBitsToFloat((b & 0xFFFF) << 16);
    }
}
