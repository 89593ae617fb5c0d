package dev.cpt4j.dist;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cpt4j.UserError;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Launch detection and the group of one; the MPI group itself is exercised under mpirun by MpiTrainTest. */
class CollectivesTest {
    @Test
    void withoutMpirunTheGroupIsThisProcessAloneAndNoLibraryIsLoaded() {
        Collective c = Collectives.fromEnvironment(Map.of("PATH", "/usr/bin"));
        assertThat(c).isSameAs(Collective.SINGLE);
        assertThat(c.size()).isEqualTo(1);
        assertThat(c.isRoot()).isTrue();
        float[] a = {1, 2, 3}, all = new float[3];
        c.allReduceSum(a, 0, 3);
        c.allGather(a, 0, 3, all, 0);
        assertThat(a).containsExactly(1, 2, 3);
        assertThat(all).containsExactly(1, 2, 3);
    }

    @Test
    void underMpirunAMissingLibraryIsOneLineSayingWhatToInstall() {
        Map<String, String> env = Map.of("OMPI_COMM_WORLD_SIZE", "2", "OMPI_COMM_WORLD_RANK", "0",
                "CPT4J_MPI_LIB", "/nonexistent/libmpi.so.40");
        assertThat(Mpi.launched(env)).isTrue();
        assertThat(Mpi.launched(Map.of("PMIX_RANK", "1"))).isTrue();
        assertThat(Mpi.launched(Map.of())).isFalse();
        assertThatThrownBy(() -> Collectives.fromEnvironment(env)).isInstanceOf(UserError.class)
                .hasMessageContaining("OMPI_COMM_WORLD_SIZE=2").hasMessageContaining("/nonexistent/libmpi.so.40")
                .hasMessageContaining("apt-get install openmpi-bin").hasMessageNotContaining("\n");
    }
}
