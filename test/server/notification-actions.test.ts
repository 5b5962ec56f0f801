// The buttons of Dream-Coder's notifications (client/src/notificationActions.ts): few enough to be read whole, and
// the ways to a model wherever a new user can be stuck without one.
import assert from "node:assert/strict";
import { test } from "node:test";
import { FIXES, GET_A_MODEL, MAX_ACTIONS, MODEL_CRASHED } from "../../client/src/notificationActions";

test("no notification offers more than three actions, and none of them is the log", () => {
    for (const [cause, actions] of Object.entries({ ...FIXES, "model crashed": MODEL_CRASHED, "first run": GET_A_MODEL })) {
        assert.ok(actions.length <= MAX_ACTIONS, `${cause}: ${actions.join(", ")}`);
        assert.ok(!actions.some((a) => /log/i.test(a)), `${cause}: ${actions.join(", ")}`);
    }
});

test("with no model, and when a download fails, the ways out are a download, a file and the bundled model", () => {
    assert.deepEqual(GET_A_MODEL, ["Download…", "Choose File…", "Try the Bundled Model"]);
    assert.deepEqual(FIXES["no-model"], GET_A_MODEL);
    // Offline, a retry fails again: a file the user has, or the model that comes with the extension, works.
    assert.deepEqual(FIXES.download, ["Retry", "Choose File…", "Try the Bundled Model"]);
});
