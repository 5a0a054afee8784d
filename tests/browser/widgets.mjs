// Drives Debian's chromium (playwright-core) through the widgets of
// site/widget.html against a running bookd, and prints what the page showed
// as one JSON line. Usage: node widgets.mjs PAGE_URL [PAGE_URL...]
import { chromium } from "playwright-core";

const QUESTION = "What is the zero moment point?";
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--headless=new"],
});
const results = [];
try {
  for (const url of process.argv.slice(2)) {
    const page = await browser.newPage();
    const failed = [];
    page.on("requestfailed", (r) => failed.push(r.url() + " " + (r.failure() || {}).errorText));
    page.on("console", (m) => { if (m.type() === "error") failed.push("console: " + m.text()); });
    await page.goto(url);
    await page.fill("#q", QUESTION);
    const r = { url, failed };
    for (const kind of ["json", "sse"]) {
      for (const turn of [1, 2]) {
        await page.click("#ask-" + kind);
        await page.waitForSelector(`#answer-${kind}[data-done="1"]`, { timeout: 30000 });
        r[`${kind}${turn}`] = await page.$eval(`#answer-${kind}`, (e) => ({ text: e.textContent, session: e.dataset.session }));
      }
    }
    r.cites = Number(await page.$eval("#cites-json", (e) => e.textContent));
    r.minted = await page.$eval("#session", (e) => e.textContent);
    results.push(r);
    await page.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
