package dev.cpt4j.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.UserError;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * A checkpoint split over several files with an index ({@code model.safetensors.index.json} or
 * {@code pytorch_model.bin.index.json}): {@code {"metadata": {...}, "weight_map": {tensor: shard file}}}, shard
 * files beside the index. Every shard is opened (and validated) up front; every tensor the index names must be
 * in the shard it names.
 */
public final class ShardedCheckpoint implements TensorSource {
    private final Path index;
    private final Map<String, TensorSource> shardOf = new LinkedHashMap<>();
    private final List<TensorSource> shards = new ArrayList<>();

    private ShardedCheckpoint(Path index) {
        this.index = index;
    }

    /** Opens a sharded safetensors checkpoint from its index file. */
    public static ShardedCheckpoint openSafetensors(Path index) {
        return open(index, Safetensors::open);
    }

    /** Opens a sharded checkpoint, opening each shard with {@code opener}. */
    public static ShardedCheckpoint open(Path index, Function<Path, TensorSource> opener) {
        ObjectNode json = Json.readObject(index);
        JsonNode wm = json.get("weight_map");
        if (wm == null || !wm.isObject() || wm.isEmpty())
            throw new UserError(index + ": missing or empty \"weight_map\"; a shard index maps every tensor name to its shard file");
        Map<String, List<String>> byFile = new LinkedHashMap<>();
        for (var e : wm.properties()) {
            if (!e.getValue().isTextual())
                throw new UserError(index + ": weight_map entry '" + e.getKey() + "' must be a file name string");
            String f = e.getValue().asText();
            if (f.contains("/") || f.contains("\\") || f.equals("..") || f.isEmpty())
                throw new UserError(index + ": weight_map entry '" + e.getKey() + "' names '" + f + "', which is not a plain file name beside the index");
            byFile.computeIfAbsent(f, k -> new ArrayList<>()).add(e.getKey());
        }
        ShardedCheckpoint sc = new ShardedCheckpoint(index);
        Path dir = index.toAbsolutePath().getParent();
        try {
            for (var e : byFile.entrySet()) {
                Path shard = dir.resolve(e.getKey());
                if (!Files.isRegularFile(shard))
                    throw new UserError(index + ": shard file " + e.getKey() + " (holding " + e.getValue().get(0)
                            + (e.getValue().size() > 1 ? " and " + (e.getValue().size() - 1) + " more" : "")
                            + ") is missing; download all shards into " + dir);
                TensorSource src = opener.apply(shard);
                sc.shards.add(src);
                for (String name : e.getValue()) {
                    if (src.info(name) == null)
                        throw new UserError(index + ": weight_map puts tensor '" + name + "' in " + e.getKey()
                                + " but that file does not contain it; the index and shards do not belong together");
                }
                for (String name : src.names()) {
                    TensorSource prev = sc.shardOf.putIfAbsent(name, src);
                    if (prev != null && prev != src)
                        throw new UserError(index + ": tensor '" + name + "' is stored in both " + prev.path().getFileName()
                                + " and " + shard.getFileName() + "; the shards do not belong together");
                }
            }
        } catch (RuntimeException e) {
            sc.close();
            throw e;
        }
        return sc;
    }

    @Override
    public Path path() {
        return index;
    }

    @Override
    public List<String> names() {
        return List.copyOf(shardOf.keySet());
    }

    @Override
    public TensorInfo info(String name) {
        TensorSource s = shardOf.get(name);
        return s == null ? null : s.info(name);
    }

    @Override
    public Path fileOf(String name) {
        TensorSource s = shardOf.get(name);
        return s == null ? index : s.path();
    }

    @Override
    public void readFloats(String name, float[] dst, int dstOff) {
        TensorSource s = shardOf.get(name);
        if (s == null) throw new UserError(index + ": no tensor named '" + name + "' in any shard");
        s.readFloats(name, dst, dstOff);
    }

    @Override
    public void readBf16(String name, short[] dst, int dstOff) {
        TensorSource s = shardOf.get(name);
        if (s == null) throw new UserError(index + ": no tensor named '" + name + "' in any shard");
        s.readBf16(name, dst, dstOff);
    }

    @Override
    public void close() {
        for (TensorSource s : shards) s.close();
    }
}
