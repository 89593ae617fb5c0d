package dev.cpt4j.train;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cpt4j.UserError;
import org.junit.jupiter.api.Test;

class LrScheduleTest {

    /** transformers' get_scheduler factors; fixture from tools/golden/make_train_golden.py. */
    @Test
    void matchesTransformersSchedules() {
        JsonNode gold = Golden.load("schedules.json");
        assertThat(gold.get("cases").size()).isGreaterThanOrEqualTo(10);
        for (JsonNode c : gold.get("cases")) {
            int total = c.get("total").asInt();
            int warmup = LrSchedule.resolveWarmup(c.get("warmup_steps").asInt(), c.get("warmup_ratio").asDouble(), total);
            assertThat(warmup).as("warm-up of " + c).isEqualTo(c.get("resolved_warmup").asInt());
            LrSchedule s = new LrSchedule(LrSchedule.Type.parse(c.get("type").asText()), warmup, total);
            JsonNode f = c.get("factors");
            for (int step = 0; step < f.size(); step++)
                assertThat(s.factor(step)).as(c.get("type").asText() + " step " + step)
                        .isCloseTo(f.get(step).asDouble(), org.assertj.core.data.Offset.offset(1e-7));
        }
    }

    @Test
    void seedRecipeWarmup() {
        // --max_steps 2500 --warmup_ratio 0.05 -> ceil(125.00000000000001)? Python gives 125 (see schedules.json)
        assertThat(LrSchedule.resolveWarmup(0, 0.05, 2500)).isEqualTo(125);
        assertThat(LrSchedule.resolveWarmup(7, 0.05, 2500)).isEqualTo(7);
    }

    @Test
    void unknownTypeNamesTheFlag() {
        assertThatThrownBy(() -> LrSchedule.Type.parse("polynomial")).isInstanceOf(UserError.class)
                .hasMessageContaining("--lr_scheduler_type");
    }
}
