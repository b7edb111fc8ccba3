import { SELF } from "cloudflare:test";
import { expect, it } from "vitest";
it("answers GET / with OK", async () => {
  const res = await SELF.fetch("http://example.com/");
  expect(await res.text()).toBe("OK");
});
