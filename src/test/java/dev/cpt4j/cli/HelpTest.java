package dev.cpt4j.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import java.util.Locale;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Every command's {@code --help} as users see it: each option says its default (or that it is required), in words
 * a new user understands; one metavar style (UPPER-CASE such as DIR, FILE, N, X, TEXT, ID, BOOL, or a list of the
 * choices); the summary line of each command is a whole sentence. Commands join {@link #CHECKED} as their help is
 * brought to this standard.
 */
class HelpTest {
    static final List<String> CHECKED = List.of("eval", "generate", "compare", "demo");

    private static CommandLine root() {
        return new CommandLine(new Main());
    }

    private static String help(CommandLine cl) {
        StringWriter w = new StringWriter();
        cl.usage(new PrintWriter(w));
        return w.toString();
    }

    @Test
    void everyOptionShowsItsDefaultOrThatItIsRequired() {
        for (String name : CHECKED) {
            CommandLine cl = root().getSubcommands().get(name);
            String rendered = help(cl);
            assertThat(rendered).as(name).doesNotContain("${").doesNotContain("as the seed")
                    .doesNotContain("default: null").doesNotContain("default null");
            CommandSpec spec = cl.getCommandSpec();
            for (OptionSpec o : spec.options()) {
                if (o.usageHelp() || o.versionHelp()) continue;
                // ${DEFAULT-VALUE} counts: the rendered help above has it interpolated, never "null"
                String d = String.join(" ", o.description()).toLowerCase(Locale.ROOT);
                assertThat(d).as(name + " " + o.longestName() + ": " + d).containsAnyOf("default", "required");
                if (o.arity().max() > 0 && !o.typeInfo().isBoolean() || o.arity().min() > 0)
                    assertThat(o.paramLabel()).as(name + " " + o.longestName())
                            .matches("[A-Z]+|[a-z0-9]+(\\|[a-z0-9]+)+");
            }
        }
    }

    @Test
    void defaultsAreTheValuesTheCommandUses() {
        String compare = help(root().getSubcommands().get("compare")).replaceAll("\\s+", " ");
        assertThat(compare).contains("(default: 3)").contains("(default: 64)").contains("(default: 0.9")
                .contains("(default: 42)").contains("(default: 8)");
        String generate = help(root().getSubcommands().get("generate")).replaceAll("\\s+", " ");
        assertThat(generate).contains("(default: 50").contains("(default: 1.0 = off)").contains("(default: 20 when");
        // eval and compare share one default block size, train's
        assertThat(help(root().getSubcommands().get("eval")).replaceAll("\\s+", " ")).contains("the model's context, at most 1024");
        assertThat(compare).contains("the model's context, at most 1024");
    }

    @Test
    void commandSummariesAreWholeSentences() {
        String top = help(root());
        for (String name : CHECKED) {
            String summary = root().getSubcommands().get(name).getCommandSpec().usageMessage().description()[0];
            assertThat(summary).as(name).endsWith(".");
            assertThat(top.replaceAll("\\s+", " ")).as(name).contains(summary);
        }
    }
}
