// The real-editor E2E harness: code-server (Node 24, from npm) + headless Debian chromium (playwright-core).
// Runner side only (node --test files); in-host suites import ./mocha-run instead.
export { findTools, toolsAvailable, e2eCacheDir, repoRoot, type E2ETools } from "./tools";
export { startCodeServer, writeUserSettings, baseTestSettings, type CodeServer, type CodeServerOptions } from "./code-server";
export { launchBrowser, chromiumArgs, type BrowserSession } from "./browser";
export { runInHostSuite, type InHostSuiteOptions, type InHostSuiteResult } from "./in-host";
export { Workbench, withWorkbench, domText, type WorkbenchSessionOptions } from "./workbench";
export { artifactsRoot, newArtifactsDir, collectArtifacts, copyExtensionHostLogs } from "./artifacts";
export { withTimeout, freePort, processesMentioning } from "./util";
