package dev.cpt4j.io;

import static dev.cpt4j.io.Fixtures.golden;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cpt4j.UserError;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ShardedCheckpointTest {
    @TempDir Path tmp;

    @Test
    void readsBothShardsThroughTheIndex() {
        try (ShardedCheckpoint sc = ShardedCheckpoint.openSafetensors(golden("tiny_sharded/model.safetensors.index.json"));
             Safetensors single = Safetensors.open(golden("tiny/model.safetensors"))) {
            assertThat(sc.names()).containsExactlyInAnyOrderElementsOf(single.names());
            assertThat(sc.fileOf("transformer.wte.weight").getFileName().toString()).isEqualTo("model-00001-of-00002.safetensors");
            assertThat(sc.fileOf("transformer.ln_f.bias").getFileName().toString()).isEqualTo("model-00002-of-00002.safetensors");
            for (String n : single.names()) assertThat(sc.readFloats(n)).as(n).containsExactly(single.readFloats(n));
        }
    }

    @Test
    void missingShardIsNamed() throws Exception {
        Path dir = copySharded();
        Files.delete(dir.resolve("model-00002-of-00002.safetensors"));
        Path index = dir.resolve("model.safetensors.index.json");
        assertThatThrownBy(() -> ShardedCheckpoint.openSafetensors(index)).isInstanceOf(UserError.class)
                .hasMessageStartingWith(index + ": shard file model-00002-of-00002.safetensors (holding ")
                .hasMessageEndingWith("is missing; download all shards into " + dir.toAbsolutePath());
    }

    @Test
    void indexAndShardsMustAgree() throws Exception {
        Path dir = copySharded();
        Path index = dir.resolve("model.safetensors.index.json");
        String json = Files.readString(index);
        Files.writeString(index, json.replace("\"transformer.wte.weight\": \"model-00001-of-00002.safetensors\"",
                "\"transformer.wte.weight\": \"model-00002-of-00002.safetensors\""));
        assertThatThrownBy(() -> ShardedCheckpoint.openSafetensors(index))
                .hasMessageContaining("weight_map puts tensor 'transformer.wte.weight' in model-00002-of-00002.safetensors but that file does not contain it");
        Files.writeString(index, json.replace("model-00001-of-00002.safetensors", "../evil.safetensors"));
        assertThatThrownBy(() -> ShardedCheckpoint.openSafetensors(index)).hasMessageContaining("which is not a plain file name");
        Files.writeString(index, "{\"metadata\": {}}");
        assertThatThrownBy(() -> ShardedCheckpoint.openSafetensors(index)).hasMessage(index + ": missing or empty \"weight_map\";"
                + " a shard index maps every tensor name to its shard file");
    }

    private Path copySharded() throws Exception {
        Path dir = tmp.resolve("sharded");
        Files.createDirectories(dir);
        try (var files = Files.list(golden("tiny_sharded"))) {
            for (Path p : files.toList()) Files.copy(p, dir.resolve(p.getFileName()));
        }
        return dir;
    }
}
