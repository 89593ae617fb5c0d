package dev.cpt4j.tokenizer;

import java.util.List;

/** Adds the special tokens around one encoded sequence (tokenizers' post-processors, single-sequence case). */
interface PostProcessor {
    int[] process(int[] ids);

    /** The ids the template puts before and after the sequence (e.g. [CLS] … [SEP], or &lt;s&gt; …). */
    record Template(int[] before, int[] after) implements PostProcessor {
        @Override
        public int[] process(int[] ids) {
            if (before.length == 0 && after.length == 0) return ids;
            int[] r = new int[before.length + ids.length + after.length];
            System.arraycopy(before, 0, r, 0, before.length);
            System.arraycopy(ids, 0, r, before.length, ids.length);
            System.arraycopy(after, 0, r, before.length + ids.length, after.length);
            return r;
        }
    }

    record Sequence(List<PostProcessor> steps) implements PostProcessor {
        @Override
        public int[] process(int[] ids) {
            for (PostProcessor p : steps) ids = p.process(ids);
            return ids;
        }
    }

    PostProcessor NONE = ids -> ids;
}
