package dev.cpt4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/** Issue 14 item 8 for train, prepare, merge, tokenize, tokenizer, demo and bench: defaults, metavars, summaries. */
class HelpTest {
    static final List<String> COMMANDS = List.of("train", "prepare", "merge", "tokenize", "tokenizer", "demo", "bench");

    private static List<CommandSpec> specs() {
        CommandLine root = new CommandLine(new Main());
        List<CommandSpec> out = new ArrayList<>();
        for (String c : COMMANDS) {
            CommandLine cl = root.getSubcommands().get(c);
            out.add(cl.getCommandSpec());
            cl.getSubcommands().values().forEach(s -> out.add(s.getCommandSpec()));
        }
        return out;
    }

    @Test
    void everyOptionSaysItsDefaultOrThatItIsRequired() {
        List<String> bad = new ArrayList<>();
        for (CommandSpec spec : specs())
            for (OptionSpec o : spec.options()) {
                if (o.hidden() || o.usageHelp() || o.versionHelp()) continue;
                String d = String.join(" ", o.description());
                if (!d.matches(".*(Default: |Required( |\\.)).*") || (o.required() && !d.contains("Required."))
                        || d.toLowerCase(java.util.Locale.ROOT).contains("the seed"))
                    bad.add(spec.qualifiedName() + " " + o.longestName() + ": " + d);
            }
        assertThat(bad).isEmpty();
    }

    @Test
    void metavarsAreWordsNotFieldNames() {
        List<String> bad = new ArrayList<>();
        for (CommandSpec spec : specs())
            for (OptionSpec o : spec.options()) {
                if (o.hidden() || o.arity().max() == 0) continue;
                // UPPER words for values, lower-case words for the literal choices, joined by |
                if (!o.paramLabel().matches("([A-Z_]+|[a-z0-9_]+)(\\|([A-Z_]+|[a-z0-9_]+))*"))
                    bad.add(spec.qualifiedName() + " " + o.longestName() + ": " + o.paramLabel());
            }
        assertThat(bad).isEmpty();
    }

    /** The "Commands:" list shows each description's first line: it must be a whole sentence. */
    @Test
    void commandSummariesAreWholeSentences() {
        for (CommandSpec spec : specs()) {
            String first = spec.usageMessage().description()[0];
            assertThat(first).as(spec.qualifiedName()).endsWith(".").doesNotEndWith("etc.");
            assertThat(first.length()).as(spec.qualifiedName()).isLessThan(240);
        }
    }

    @Test
    void trainHelpShowsTheDefaultsItPrints() {
        java.io.StringWriter w = new java.io.StringWriter();
        new CommandLine(new Main()).getSubcommands().get("train").usage(new java.io.PrintWriter(w));
        String help = w.toString();
        assertThat(help).contains("Default: 0.05").contains("Default: 5.0E-5").contains("Default: 500")
                .contains("--peft_path").contains("--report_to").contains("--eval_strategy")
                .contains("A repeated flag takes its last value");
    }
}
