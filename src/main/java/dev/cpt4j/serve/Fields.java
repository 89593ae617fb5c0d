package dev.cpt4j.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;

/**
 * Typed, checked access to a request body's fields: a wrong type or range is a 400 naming the field; a field the
 * server does not know is a 400 too (OpenAI's "Unrecognized request argument"), so a typo is never silently ignored.
 * A JSON {@code null} counts as absent, as the OpenAI API treats it.
 */
final class Fields {
    private final ObjectNode body;

    Fields(ObjectNode body, Set<String> known) {
        this.body = body;
        for (Iterator<String> it = body.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            if (!known.contains(f))
                throw ApiError.badRequest(f, "Unrecognized request argument supplied: " + f);
        }
    }

    boolean has(String f) {
        JsonNode n = body.get(f);
        return n != null && !n.isNull();
    }

    JsonNode get(String f) {
        return has(f) ? body.get(f) : null;
    }

    String string(String f, String dflt) {
        if (!has(f)) return dflt;
        JsonNode n = body.get(f);
        if (!n.isTextual()) throw ApiError.badRequest(f, "'" + f + "' must be a string");
        return n.asText();
    }

    boolean bool(String f, boolean dflt) {
        if (!has(f)) return dflt;
        JsonNode n = body.get(f);
        if (!n.isBoolean()) throw ApiError.badRequest(f, "'" + f + "' must be true or false");
        return n.asBoolean();
    }

    /** An integer in [min, max]; {@code dflt} when absent. */
    long integer(String f, long dflt, long min, long max) {
        if (!has(f)) return dflt;
        JsonNode n = body.get(f);
        if (!n.isIntegralNumber() || !n.canConvertToLong())
            throw ApiError.badRequest(f, "'" + f + "' must be an integer");
        long v = n.asLong();
        if (v < min || v > max)
            throw ApiError.badRequest(f, "'" + f + "' must be between " + min + " and " + max + ", got " + v);
        return v;
    }

    /** A finite number in [min, max]; {@code dflt} when absent. */
    double number(String f, double dflt, double min, double max) {
        if (!has(f)) return dflt;
        JsonNode n = body.get(f);
        if (!n.isNumber()) throw ApiError.badRequest(f, "'" + f + "' must be a number");
        double v = n.asDouble();
        if (!(v >= min && v <= max))
            throw ApiError.badRequest(f, "'" + f + "' must be between " + min + " and " + max + ", got " + v);
        return v;
    }

    /** A field this server accepts only at its neutral value (0, false, empty): anything else is a clear 400. */
    void neutral(String f, String what) {
        if (!has(f)) return;
        JsonNode n = body.get(f);
        boolean neutral = (n.isNumber() && n.asDouble() == 0) || (n.isBoolean() && !n.asBoolean())
                || (n.isContainerNode() && n.isEmpty()) || (n.isTextual() && n.asText().isEmpty());
        if (!neutral) throw ApiError.badRequest(f, "'" + f + "' is not supported by this server (" + what + ")");
    }

    /** {@code stop}: a string or up to {@code max} strings, none empty. */
    List<String> stop(int max) {
        List<String> out = new ArrayList<>();
        if (!has("stop")) return out;
        JsonNode n = body.get("stop");
        if (n.isTextual()) out.add(n.asText());
        else if (n.isArray()) {
            for (JsonNode s : n) {
                if (!s.isTextual()) throw ApiError.badRequest("stop", "'stop' must be a string or a list of strings");
                out.add(s.asText());
            }
        } else throw ApiError.badRequest("stop", "'stop' must be a string or a list of strings");
        if (out.size() > max) throw ApiError.badRequest("stop", "'stop' takes at most " + max + " strings, got " + out.size());
        for (String s : out) if (s.isEmpty()) throw ApiError.badRequest("stop", "'stop' strings must not be empty");
        return out;
    }
}
