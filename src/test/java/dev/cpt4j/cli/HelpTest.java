package dev.cpt4j.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Every command's {@code --help} as users see it (issue 14 item 8): each option says its default (or that it is
 * required), in words a new user understands; one metavar style (UPPER-CASE such as DIR, FILE, N, X, TEXT, ID, BOOL,
 * or a list of the choices); the summary line of each command is a whole sentence. Hidden options (train's accepted
 * compatibility flags, answered with one line each) are not shown and not checked.
 */
class HelpTest {
    static final List<String> CHECKED = List.of("prepare", "train", "eval", "generate", "compare", "tokenize", "merge",
            "tokenizer", "demo", "bench", "serve");

    private static CommandLine root() {
        return new CommandLine(new Main());
    }

    private static String help(CommandLine cl) {
        StringWriter w = new StringWriter();
        cl.usage(new PrintWriter(w));
        return w.toString();
    }

    /** Each checked command and its subcommands ({@code bench train}, {@code tokenizer extend}, …). */
    private static List<CommandLine> commands() {
        List<CommandLine> out = new ArrayList<>();
        for (String name : CHECKED) {
            CommandLine cl = root().getSubcommands().get(name);
            out.add(cl);
            out.addAll(cl.getSubcommands().values());
        }
        return out;
    }

    @Test
    void everyOptionShowsItsDefaultOrThatItIsRequired() {
        for (CommandLine cl : commands()) {
            String name = cl.getCommandSpec().qualifiedName();
            String rendered = help(cl);
            assertThat(rendered).as(name).doesNotContain("${").doesNotContain("as the seed").doesNotContain("the seed uses")
                    .doesNotContain("default: null").doesNotContain("default null");
            CommandSpec spec = cl.getCommandSpec();
            for (OptionSpec o : spec.options()) {
                if (o.usageHelp() || o.versionHelp() || o.hidden()) continue;
                // ${DEFAULT-VALUE} counts: the rendered help above has it interpolated, never "null"
                String d = String.join(" ", o.description()).toLowerCase(Locale.ROOT);
                assertThat(d).as(name + " " + o.longestName() + ": " + d).containsAnyOf("default", "required");
                if (o.required()) assertThat(d).as(name + " " + o.longestName()).contains("required.");
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
        String train = help(root().getSubcommands().get("train")).replaceAll("\\s+", " ");
        assertThat(train).contains("the model's context, at most 1024").contains("(default: 5.0E-5)")
                .contains("(default: 500)").contains("--peft_path").contains("--report_to").contains("--eval_strategy")
                .contains("A repeated flag takes its last value");
        // prepare and train share one default validation split
        String prepare = help(root().getSubcommands().get("prepare")).replaceAll("\\s+", " ");
        String split = "(default: " + dev.cpt4j.data.PrepareOptions.DEFAULT_VALIDATION_FRACTION + ", as cpt4j ";
        assertThat(prepare).contains(split + "train)");
        assertThat(train).contains(split + "prepare)");
    }

    @Test
    void commandSummariesAreWholeSentences() {
        for (CommandLine cl : commands()) {
            CommandSpec spec = cl.getCommandSpec();
            String summary = spec.usageMessage().description()[0];
            assertThat(summary).as(spec.qualifiedName()).endsWith(".");
            String listing = help(cl.getParent()).replaceAll("\\s+", " ");
            assertThat(listing).as(spec.qualifiedName()).contains(summary);
        }
    }
}
