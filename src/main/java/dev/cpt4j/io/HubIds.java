package dev.cpt4j.io;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Pattern;

/**
 * cpt4j reads local folders only; a path that does not exist but is spelled like a Hugging Face hub id
 * ({@code owner/name}, as {@code from_pretrained} takes it) gets a hint saying how to download it. The error messages
 * of the loaders append {@link #hint}.
 */
public final class HubIds {
    private HubIds() {}

    // the hub's repo id rule (huggingface_hub validate_repo_id): owner/name of [A-Za-z0-9._-], no '--' or '..'
    private static final Pattern ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}");

    /** True when {@code p} does not exist and reads as {@code owner/name}. */
    public static boolean looksLikeHubId(Path p) {
        if (p == null || Files.exists(p)) return false;
        String s = p.toString();
        return ID.matcher(s).matches() && !s.contains("..") && !s.contains("--") && !s.startsWith(".");
    }

    /**
     * For a missing path that reads as a hub id: {@code "; it looks like a Hugging Face hub id, and cpt4j reads local
     * folders only: download it first (huggingface-cli download ID --local-dir NAME) and pass that folder"}; else "".
     */
    public static String hint(Path p) {
        if (!looksLikeHubId(p)) return "";
        String id = p.toString(), local = id.substring(id.indexOf('/') + 1);
        return "; " + id + " looks like a Hugging Face hub id, and cpt4j reads local folders only: download it first "
                + "(huggingface-cli download " + id + " --local-dir " + local + ") and pass the folder " + local;
    }
}
