// Lets cpt4j write the files that make_io_fixtures.py --java then loads with transformers and peft:
//   OUT          HfCheckpoints.save of the model in IN (F32)        OUT_f16  the same in F16
//   ADAPTER_OUT  PeftAdapters.write of ADAPTER_IN's tensors with a config made by LoraConfig.of
// Run: java -cp target/cpt4j.jar tools/golden/SaveTinyModel.java IN OUT ADAPTER_IN ADAPTER_OUT
import dev.cpt4j.hf.HfCheckpoints;
import dev.cpt4j.hf.PeftAdapters;
import dev.cpt4j.io.DType;
import java.nio.file.Path;
import java.util.List;

void main(String[] args) {
    Path in = Path.of(args[0]), out = Path.of(args[1]);
    var m = HfCheckpoints.loadModelDir(in);
    var base = HfCheckpoints.readConfigJson(in);
    HfCheckpoints.save(out, m.config(), m.layout(), m.params(), DType.F32, base);
    HfCheckpoints.save(Path.of(args[1] + "_f16"), m.config(), m.layout(), m.params(), DType.F16, base);
    var adapter = PeftAdapters.read(Path.of(args[2]));
    var cfg = PeftAdapters.LoraConfig.of(4, 8, 0.0, List.of("c_attn"), List.of("wte", "lm_head"), false, null);
    PeftAdapters.write(Path.of(args[3]), cfg, adapter.tensors(), DType.F32);
    System.out.println("saved " + out + ", " + out + "_f16 and " + args[3]);
}
