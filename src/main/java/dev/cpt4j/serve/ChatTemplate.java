package dev.cpt4j.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A tokenizer's chat template ({@code chat_template} in tokenizer_config.json, a Jinja template), rendered as
 * transformers' {@code apply_chat_template} does: with {@code messages}, {@code add_generation_prompt}, the special
 * tokens of tokenizer_config.json ({@code bos_token}, {@code eos_token}, …) and {@code raise_exception}. Rendered by
 * Jinjava, whose Jinja dialect covers the usual templates (loops, conditions, {@code message['content']}, filters);
 * a template it cannot render is a 400 that says so, never a guess.
 */
public final class ChatTemplate {
    private final String template;
    private final Map<String, Object> specials;
    private final Jinjava jinja;

    ChatTemplate(String template, Map<String, Object> specials) {
        this.template = template;
        this.specials = specials;
        this.jinja = new Jinjava(JinjavaConfig.newBuilder().withFailOnUnknownTokens(false).build());
        jinja.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception", ChatTemplate.class,
                "raiseException", String.class));
    }

    /** The template of {@code dir}'s tokenizer_config.json, or null when it has none. */
    public static ChatTemplate of(Path dir) {
        Path f = dir.resolve("tokenizer_config.json");
        if (!Files.isRegularFile(f)) return null;
        JsonNode cfg;
        try {
            cfg = OpenAiServer.JSON.readTree(Files.readString(f));
        } catch (IOException e) {
            return null;   // the tokenizer loader reports a broken file; here it only means no template
        }
        JsonNode t = cfg.get("chat_template");
        String text = null;
        if (t != null && t.isTextual()) text = t.asText();
        else if (t != null && t.isArray())   // a list of named templates: take "default"
            for (JsonNode e : t) if ("default".equals(e.path("name").asText())) text = e.path("template").asText();
        if (text == null || text.isBlank()) return null;
        Map<String, Object> specials = new HashMap<>();
        for (String k : List.of("bos_token", "eos_token", "pad_token", "unk_token", "sep_token", "cls_token")) {
            JsonNode v = cfg.get(k);
            if (v == null || v.isNull()) continue;
            specials.put(k, v.isTextual() ? v.asText() : v.path("content").asText());
        }
        return new ChatTemplate(text, specials);
    }

    /** tokenizer_config.json's {@code eos_token} (a chat model's end of turn, e.g. {@code <|im_end|>}), or null. */
    String eosToken() {
        Object e = specials.get("eos_token");
        return e == null ? null : e.toString();
    }

    /** The prompt text for {@code messages} (each {role, content}); a template error is a 400. */
    String render(List<Map<String, Object>> messages, boolean addGenerationPrompt) {
        Map<String, Object> ctx = new HashMap<>(specials);
        ctx.put("messages", messages);
        ctx.put("add_generation_prompt", addGenerationPrompt);
        RenderResult r;
        try {
            r = jinja.renderForResult(template, ctx);
        } catch (RuntimeException e) {
            throw ApiError.badRequest("messages", "the model's chat template could not be rendered: " + message(e));
        }
        for (TemplateError e : r.getErrors()) {
            if (e.getSeverity() != TemplateError.ErrorType.FATAL) continue;
            for (Throwable c = e.getException(); c != null; c = c.getCause())
                if (c instanceof TemplateRaised t)   // the template itself refuses these messages
                    throw ApiError.badRequest("messages", "the model's chat template refuses these messages: " + t.getMessage());
            throw ApiError.badRequest("messages", "the model's chat template could not be rendered: " + e.getMessage());
        }
        return r.getOutput();
    }

    private static String message(Throwable e) {
        for (Throwable c = e; c != null; c = c.getCause()) if (c instanceof TemplateRaised t) return t.getMessage();
        return e.getMessage();
    }

    /** The templates' {@code raise_exception(msg)}: the template refuses these messages. */
    public static String raiseException(String msg) {
        throw new TemplateRaised(msg);
    }

    private static final class TemplateRaised extends RuntimeException {
        TemplateRaised(String m) {
            super(m);
        }
    }
}
