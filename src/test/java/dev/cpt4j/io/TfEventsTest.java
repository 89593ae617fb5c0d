package dev.cpt4j.io;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TfEventsTest {
    /** CRC-32C check value of "123456789" (RFC 3720 B.4), masked as TFRecord does. */
    @Test
    void maskedCrcIsTfRecords() {
        int crc = 0xE3069283;
        int masked = ((crc >>> 15) | (crc << 17)) + 0xa282ead8;
        assertThat(TfEvents.maskedCrc("123456789".getBytes(StandardCharsets.US_ASCII), 0, 9)).isEqualTo(masked);
    }

    @Test
    void writesAVersionRecordScalarsAndASessionStartThatReadBack(@TempDir Path tmp) throws Exception {
        Path file;
        try (TfEvents w = TfEvents.create(tmp.resolve("runs/a"), "host name/x")) {
            file = w.file();
            Map<String, Double> v = new LinkedHashMap<>();
            v.put("train/loss", 3.25);
            v.put("train/learning_rate", 2e-4);
            w.scalars(10, v);
            w.sessionStart(11);
            w.scalars(300_000_000_000L, Map.of("eval/loss", -0.5));
        }
        assertThat(file.getFileName().toString()).startsWith("events.out.tfevents.").contains(".host_name_x.");
        List<TfEventsReader.Event> e = TfEventsReader.read(file);
        assertThat(e).hasSize(4);
        assertThat(e.get(0).fileVersion()).isEqualTo("brain.Event:2");
        assertThat(e.get(0).wallTime()).isGreaterThan(1.7e9);
        assertThat(e.get(1).step()).isEqualTo(10);
        assertThat(e.get(1).scalars()).containsExactly(Map.entry("train/loss", 3.25f), Map.entry("train/learning_rate", 2e-4f));
        assertThat(e.get(2).sessionStatus()).isEqualTo(1);
        assertThat(e.get(2).step()).isEqualTo(11);
        assertThat(e.get(3).step()).isEqualTo(300_000_000_000L);   // a multi-byte varint
        assertThat(e.get(3).scalars()).containsEntry("eval/loss", -0.5f);
    }
}
