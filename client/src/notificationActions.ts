// The buttons Dream-Coder's notifications offer, each label declared once, and which of them each failure's cause
// gets. No vscode import, so that a unit test (test/server/notification-actions.test.ts) can check the lists.
import type { Problem } from "../../common/protocol";

/** Every action a notification offers. Short labels: a notification is 450 pixels wide, and its buttons share one
 * row, so longer labels, or more than three of them, are cut to fragments ("Down…", "Choos…"). */
export type Action =
    | "Download…"
    | "Choose File…"
    | "Try the Bundled Model"
    | "Select Model…"
    | "Open Setting"
    | "Open GPU Setting"
    | "Restart Anyway"
    | "Set Hugging Face Token…"
    | "Build Runtime…"
    | "Retry";

/** The most buttons one notification has. The log is not one of them: the status menu and the link in every error
 * message lead there. */
export const MAX_ACTIONS = 3;

/** The ways to a model, wherever there is none: the first-run offer, a command that needs one, a failed download. */
export const GET_A_MODEL: readonly Action[] = ["Download…", "Choose File…", "Try the Bundled Model"];

/** A model that crashed the language server twice, which is not restarted with it: another model (or another
 * quantization of it), fewer layers on the GPU, or the same model again. */
export const MODEL_CRASHED: readonly Action[] = ["Select Model…", "Open GPU Setting", "Restart Anyway"];

/** The actions that fix each cause, in the order offered. */
export const FIXES: Record<Problem, readonly Action[]> = {
    "no-model": GET_A_MODEL,
    "not-downloaded": ["Download…", "Select Model…", "Choose File…"],
    "model-file": ["Choose File…", "Select Model…", "Open Setting"],
    download: ["Retry", "Choose File…", "Try the Bundled Model"],
    "hub-login": ["Set Hugging Face Token…", "Retry"],
    "no-runtime": ["Build Runtime…"],
    "no-hole": []
};
