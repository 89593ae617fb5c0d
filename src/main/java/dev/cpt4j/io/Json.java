package dev.cpt4j.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.UserError;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** JSON files in and out, with errors that name the file and the position of a syntax error. */
public final class Json {
    /** One shared, immutable-after-construction mapper; Jackson mappers are thread-safe once configured. */
    public static final ObjectMapper MAPPER = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .build();

    private Json() {}

    /** Reads a JSON object from {@code file}; a missing file or invalid JSON is a one-line {@link UserError}. */
    public static ObjectNode readObject(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new UserError(file + ": file not found; check the path");
        } catch (IOException e) {
            throw new UserError(file + ": cannot read (" + e.getMessage() + ")");
        }
        return parseObject(bytes, file.toString());
    }

    /** Parses a JSON object; {@code where} names the source in messages. */
    public static ObjectNode parseObject(byte[] bytes, String where) {
        JsonNode n;
        try {
            n = MAPPER.readTree(bytes);
        } catch (JsonProcessingException e) {
            throw new UserError(where + ": invalid JSON" + location(e) + " (" + firstLine(e.getOriginalMessage())
                    + "); fix the file or download it again");
        } catch (IOException e) {
            throw new UserError(where + ": cannot read JSON (" + e.getMessage() + ")");
        }
        if (n == null || n.isMissingNode()) throw new UserError(where + ": empty file, expected a JSON object");
        if (!n.isObject()) throw new UserError(where + ": expected a JSON object, found " + n.getNodeType().toString().toLowerCase());
        return (ObjectNode) n;
    }

    /** Writes {@code node} pretty-printed (2-space indent, trailing newline) to {@code file} atomically. */
    public static void writeAtomic(Path file, JsonNode node) {
        try {
            String s = toPrettyString(node) + "\n";
            AtomicFiles.write(file, s.getBytes(StandardCharsets.UTF_8));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** {@code node} formatted like Python's {@code json.dumps(indent=2)}: {@code "key": value}, one item per line. */
    public static String toPrettyString(JsonNode node) throws JsonProcessingException {
        DefaultPrettyPrinter pp = new DefaultPrettyPrinter()
                .withSeparators(Separators.createDefaultInstance().withObjectFieldValueSpacing(Separators.Spacing.AFTER))
                .withArrayIndenter(DefaultIndenter.SYSTEM_LINEFEED_INSTANCE.withLinefeed("\n"))
                .withObjectIndenter(DefaultIndenter.SYSTEM_LINEFEED_INSTANCE.withLinefeed("\n"));
        return MAPPER.writer(pp).writeValueAsString(node);
    }

    private static String location(JsonProcessingException e) {
        var loc = e.getLocation();
        if (loc == null || loc.getLineNr() < 0) return "";
        return " at line " + loc.getLineNr() + ", column " + loc.getColumnNr();
    }

    private static String firstLine(String s) {
        if (s == null) return "syntax error";
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    /** Field {@code key} of {@code j} as a number, {@code dflt} if absent or null; a one-line error naming {@code where} otherwise. */
    public static double number(ObjectNode j, String where, String key, double dflt) {
        JsonNode v = j.get(key);
        if (v == null || v.isNull()) return dflt;
        if (!v.isNumber()) throw new dev.cpt4j.UserError(where + ": field '" + key + "' must be a number, got " + v);
        return v.asDouble();
    }

    /** Field {@code key} of {@code j} as a boolean, {@code dflt} if absent or null. */
    public static boolean bool(ObjectNode j, String where, String key, boolean dflt) {
        JsonNode v = j.get(key);
        if (v == null || v.isNull()) return dflt;
        if (!v.isBoolean()) throw new dev.cpt4j.UserError(where + ": field '" + key + "' must be true or false, got " + v);
        return v.asBoolean();
    }

    /** {@code v} as an int; a one-line error naming {@code where} and {@code key} when it is not an integer. */
    public static int intValue(JsonNode v, String where, String key) {
        if (!v.isIntegralNumber() || !v.canConvertToInt())
            throw new dev.cpt4j.UserError(where + ": field '" + key + "' must be an integer, got " + v);
        return v.asInt();
    }

    /** Field {@code key} of {@code j} as an int, {@code dflt} if absent or null. */
    public static int optionalInt(ObjectNode j, String where, String key, int dflt) {
        JsonNode v = j.get(key);
        return v == null || v.isNull() ? dflt : intValue(v, where, key);
    }

    /** Field {@code key} of {@code j} as a string, {@code dflt} if absent or null. */
    public static String string(ObjectNode j, String where, String key, String dflt) {
        JsonNode v = j.get(key);
        if (v == null || v.isNull()) return dflt;
        if (!v.isTextual()) throw new dev.cpt4j.UserError(where + ": field '" + key + "' must be a string, got " + v);
        return v.asText();
    }
}
