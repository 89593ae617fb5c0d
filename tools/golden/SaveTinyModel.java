// Loads a Hugging Face GPT-2 directory with cpt4j and saves it again (F32 into OUT, F16 into OUT_f16), so that
// make_io_fixtures.py --java can check that transformers loads what cpt4j writes.
// Run: java -cp target/cpt4j.jar tools/golden/SaveTinyModel.java IN_DIR OUT_DIR
import dev.cpt4j.hf.HfCheckpoints;
import dev.cpt4j.io.DType;
import java.nio.file.Path;

void main(String[] args) {
    Path in = Path.of(args[0]), out = Path.of(args[1]);
    var m = HfCheckpoints.loadModelDir(in);
    var base = HfCheckpoints.readConfigJson(in);
    HfCheckpoints.save(out, m.config(), m.layout(), m.params(), DType.F32, base);
    HfCheckpoints.save(Path.of(args[1] + "_f16"), m.config(), m.layout(), m.params(), DType.F16, base);
    System.out.println("saved " + out + " and " + out + "_f16");
}
