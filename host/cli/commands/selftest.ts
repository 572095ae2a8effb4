// `mbedlink selftest`: runs the checks (selftest.ts) against the device,
// one line per check with its time, then "selftest: N passed, M failed".
import type { Context } from "../context.js";
import { CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from "../output.js";
import { CHECKS, type CheckResult, runSelftest, selectChecks } from "../selftest.js";

const TAG: Record<CheckResult["status"], string> = { pass: "PASS", fail: "FAIL", skip: "SKIP" };

export async function selftest(ctx: Context): Promise<number> {
  const only = ctx
    .str("only")
    ?.split(",")
    .map((w) => w.trim())
    .filter((w) => w !== "");
  const checks = selectChecks(only);
  if (ctx.flag("list")) {
    if (ctx.out.json) ctx.out.document(checks.map((c) => ({ name: c.name, title: c.title })));
    for (const c of checks) ctx.out.line(`${c.name.padEnd(30)} ${c.title}`);
    return EXIT_OK;
  }
  if (checks.length === 0) throw new CliError(`--only ${ctx.str("only")} matches no check (mbedlink selftest --list)`, EXIT_USAGE);
  const corrupt = process.env.MBEDLINK_SELFTEST_CORRUPT || undefined;
  if (corrupt !== undefined && !CHECKS.some((c) => c.name === corrupt)) {
    throw new CliError(`MBEDLINK_SELFTEST_CORRUPT names no check: ${JSON.stringify(corrupt)} (mbedlink selftest --list)`, EXIT_USAGE);
  }

  const dev = await ctx.device();
  const started = performance.now();
  const width = Math.max(...checks.map((c) => c.name.length));
  if (corrupt) ctx.out.warn(`MBEDLINK_SELFTEST_CORRUPT: the known answers of ${corrupt} are altered; it must fail`);
  ctx.out.line(
    `selftest on ${ctx.deviceLabel}: ${dev.info.board}, firmware ${dev.info.firmwareVersion}, Mbed TLS ${dev.info.mbedtlsVersion}`,
  );
  const results = await runSelftest(dev, {
    ...(only ? { only } : {}),
    ...(corrupt ? { corrupt } : {}),
    around: (check, work) => ctx.progress.during(check.name, work),
    onResult: (r) => {
      const time = r.status === "skip" ? "" : `${r.ms.toFixed(0)} ms`;
      const detail = `  ${r.detail ?? r.title}`;
      ctx.out.line(`${TAG[r.status]}  ${r.name.padEnd(width)}  ${time.padStart(8)}${detail}`);
    },
  });
  const ms = performance.now() - started;
  const count = (s: CheckResult["status"]) => results.filter((r) => r.status === s).length;
  const [passed, failed, skipped] = [count("pass"), count("fail"), count("skip")];
  if (ctx.out.json) {
    ctx.out.document({
      ...ctx.deviceJson,
      board: dev.info.board,
      firmwareVersion: dev.info.firmwareVersion,
      mbedtlsVersion: dev.info.mbedtlsVersion,
      passed,
      failed,
      skipped,
      ms: Math.round(ms),
      ...(corrupt ? { corrupt } : {}),
      checks: results.map((r) => ({ ...r, ms: Math.round(r.ms) })),
    });
  }
  ctx.out.line(`selftest: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""} (${(ms / 1000).toFixed(1)} s)`);
  return failed === 0 && passed > 0 ? EXIT_OK : EXIT_FAILURE;
}
