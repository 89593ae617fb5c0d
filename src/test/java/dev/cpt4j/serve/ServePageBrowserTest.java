package dev.cpt4j.serve;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.By;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.Select;
import org.openqa.selenium.support.ui.WebDriverWait;

import java.io.File;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The web page in a real headless browser (Debian's chromium through chromedriver, installed by
 * tools/install-chromium.sh, which ./test runs first): it lists the served models, streams a completion into the
 * page (the same text the API returns), and the dashboard draws the loss curve of a finished run (the
 * metrics.jsonl shipped with models/cpt4j-poetry-base) and shows samples of its last checkpoint's adapter. Screenshots land in target/serve-playground.png and target/serve-page.png.
 */
class ServePageBrowserTest {
    static final ObjectMapper JSON = new ObjectMapper();
    @TempDir
    Path tmp;

    @Test
    void pageListsModelsStreamsACompletionAndDrawsTheDashboard() throws Exception {
        Path run = tmp.resolve("poetry-run");
        Files.createDirectories(run.resolve("checkpoint-300"));
        Files.copy(Path.of("models/cpt4j-poetry-base/metrics.jsonl"), run.resolve("metrics.jsonl"));
        Files.writeString(run.resolve("checkpoint-300/trainer_state.json"), "{\"global_step\":300,\"max_steps\":300}");
        // the run's last checkpoint holds an adapter: the dashboard serves it and shows its samples
        Adapters.writeWithVocab(OpenAiServerTest.WIDE, run.resolve("checkpoint-300"), 64, 32);
        try (Serve serve = Serve.start(new ServeOptions(OpenAiServerTest.MODEL, "tiny",
                Map.of("poem", OpenAiServerTest.WIDE), "127.0.0.1", 0, null, 4, 0, 1 << 16, 0, 64, 2, 16, run, 1))) {
            String base = "http://127.0.0.1:" + serve.port();
            String want = JSON.readTree(HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(base + "/v1/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"tiny\",\"prompt\":\"床前明月光\",\"max_tokens\":16,"
                            + "\"temperature\":0}")).build(), HttpResponse.BodyHandlers.ofString()).body())
                    .get("choices").get(0).get("text").asText();
            assertThat(want).isNotEmpty();

            WebDriver driver = browser();
            try {
                WebDriverWait wait = new WebDriverWait(driver, Duration.ofSeconds(30));
                driver.get(base + "/");
                wait.until(d -> "tiny,poem".equals(d.findElement(By.id("status")).getDomAttribute("data-models")));
                assertThat(new Select(driver.findElement(By.id("model-a"))).getOptions()).extracting(e -> e.getText())
                        .containsExactly("tiny", "poem");

                driver.findElement(By.id("prompt")).clear();
                driver.findElement(By.id("prompt")).sendKeys("床前明月光");
                for (String[] f : new String[][] {{"max-tokens", "16"}, {"temperature", "0"}}) {
                    driver.findElement(By.id(f[0])).clear();
                    driver.findElement(By.id(f[0])).sendKeys(f[1]);
                }
                new Select(driver.findElement(By.id("model-b"))).selectByValue("poem");
                driver.findElement(By.id("generate")).click();
                wait.until(d -> "done".equals(d.findElement(By.id("status")).getDomAttribute("data-state")));
                assertThat(driver.findElement(By.id("status")).getText()).isEqualTo("done");
                assertThat(driver.findElement(By.id("out-a")).getText()).isEqualTo(want.strip());
                assertThat(driver.findElement(By.id("out-b")).getText()).isNotBlank();
                assertThat(driver.findElement(By.id("name-b")).getText()).isEqualTo("poem");
                Files.copy(((TakesScreenshot) driver).getScreenshotAs(OutputType.FILE).toPath(),
                        Path.of("target/serve-playground.png"), StandardCopyOption.REPLACE_EXISTING);

                driver.findElement(By.id("tab-dash")).click();
                wait.until(d -> d.findElement(By.id("dash-step")).getText().equals("300 / 300"));
                assertThat(driver.findElement(By.id("dash-eta")).getText()).isEqualTo("finished");
                assertThat(driver.findElement(By.id("dash-run")).getText()).isEqualTo("poetry-run");
                wait.until(d -> "31".equals(d.findElement(By.id("curve")).getDomAttribute("data-points")));
                // the curve is on the canvas: count the pixels of the training-loss colour
                Object blue = ((JavascriptExecutor) driver).executeScript(
                        "const c = document.getElementById('curve'); const d = c.getContext('2d')"
                                + ".getImageData(0, 0, c.width, c.height).data; let n = 0;"
                                + "for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - 43) < 30 && Math.abs(d[i+1] - 108) < 30"
                                + " && Math.abs(d[i+2] - 176) < 30 && d[i+3] > 0) n++; return n;");
                assertThat(((Number) blue).longValue()).as("curve pixels").isGreaterThan(300);
                wait.until(d -> "checkpoint-300".equals(d.findElement(By.id("dash-samples")).getDomAttribute("data-checkpoint")));
                String ckText = JSON.readTree(HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(base + "/v1/completions"))
                        .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"checkpoint-300\",\"prompt\":\"床前明月光\","
                                + "\"max_tokens\":48,\"temperature\":0}")).build(), HttpResponse.BodyHandlers.ofString()).body())
                        .get("choices").get(0).get("text").asText();
                assertThat(driver.findElement(By.cssSelector("#dash-samples .sample[data-model='checkpoint-300'] pre")).getText())
                        .isEqualTo(("床前明月光" + ckText).strip());
                assertThat(driver.findElements(By.cssSelector("#dash-samples .sample"))).hasSize(2);
                File shot = ((TakesScreenshot) driver).getScreenshotAs(OutputType.FILE);
                Files.copy(shot.toPath(), Path.of("target/serve-page.png"), StandardCopyOption.REPLACE_EXISTING);
            } finally {
                driver.quit();
            }
        }
    }

    /** Headless chromium with the flags that work on a machine without network or display. */
    private WebDriver browser() throws Exception {
        ChromeOptions o = new ChromeOptions();
        o.setBinary(exe("chromium"));
        o.addArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1200,900",
                "--user-data-dir=" + Files.createDirectories(tmp.resolve("profile")));
        ChromeDriverService svc = new ChromeDriverService.Builder().usingDriverExecutable(new File(exe("chromedriver")))
                .usingAnyFreePort().build();
        return new ChromeDriver(svc, o);
    }

    private static String exe(String name) {
        for (String dir : new String[] {"/usr/bin", "/usr/lib/chromium", "/usr/local/bin"}) {
            Path p = Path.of(dir, name);
            if (Files.isExecutable(p)) return p.toString();
        }
        throw new IllegalStateException(name + " is not installed: run tools/install-chromium.sh (./test does)");
    }
}
