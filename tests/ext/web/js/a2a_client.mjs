// The official A2A JavaScript client (@a2a-js/sdk) run against MiniAgents' a2a_app.
//
// `node a2a_client.mjs <base url>`, run by tests/ext/a2a/test_official_js_client.py, which
// serves the apps (and a few control routes) at the base URL. Every scenario drives an app as
// a stock client does (ClientFactory.createFromUrl: the card, then JSON-RPC), and the SDK
// parses every event with its own protobuf-JSON readers. It prints one JSON object: the
// scenarios checked and every problem found (an error thrown, an event or state otherwise
// than the scenario expects).

import { ClientFactory } from "@a2a-js/sdk/client";
import { TaskNotCancelableError, TaskNotFoundError } from "@a2a-js/sdk/errors";

const [base] = process.argv.slice(2);
const problems = [];
const checked = [];
let scenario = "";
let events = 0;

function problem(text) {
  problems.push({ scenario, problem: String(text).slice(0, 2000) });
}

function expect(condition, text) {
  if (!condition) problem(text);
}

const SCENARIO_TIMEOUT_MS = 30_000; // a guard against a hang, never an order of events

async function check(name, run) {
  scenario = name;
  checked.push(name);
  let timer;
  const hang = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no end after ${SCENARIO_TIMEOUT_MS} ms`)), SCENARIO_TIMEOUT_MS);
  });
  try {
    await Promise.race([run(), hang]);
  } catch (error) {
    problem(`threw: ${error?.stack ?? error}`);
  } finally {
    clearTimeout(timer);
  }
}

async function control(path, body = {}) {
  const response = await fetch(`${base}/control/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(response.ok, `control ${path}: ${response.status}`);
}

let messages = 0;

function message(parts, taskId = "") {
  messages += 1;
  return {
    tenant: "",
    message: {
      messageId: `js-${messages}`,
      role: 1, // ROLE_USER
      parts,
      contextId: "",
      taskId,
      metadata: undefined,
      extensions: [],
      referenceTaskIds: [],
    },
    configuration: undefined,
    metadata: undefined,
  };
}

function text(value) {
  return { content: { $case: "text", value }, metadata: undefined, filename: "", mediaType: "" };
}

function data(value) {
  return { content: { $case: "data", value }, metadata: undefined, filename: "", mediaType: "application/json" };
}

function textOf(parts) {
  return parts.map((part) => (part.content?.$case === "text" ? part.content.value : "")).join("");
}

function kindOf(event) {
  const payload = event.payload;
  if (payload.$case === "statusUpdate") return `status ${payload.value.status.state}`;
  if (payload.$case === "artifactUpdate") {
    const update = payload.value;
    return update.lastChunk ? "last" : update.append ? "chunk" : "first";
  }
  return payload.$case;
}

async function all(stream) {
  const found = [];
  for await (const event of stream) {
    events += 1;
    found.push(event);
  }
  return found;
}

async function clientOf(name) {
  return new ClientFactory().createFromUrl(`${base}/${name}/`);
}

const COMPLETED = "status 3";
const WORKING = "status 2";

await check("card and a streamed text", async () => {
  const client = await clientOf("plain");
  const card = await client.getAgentCard();
  expect(card.name === "RESEARCHER" && card.capabilities.streaming, `card ${JSON.stringify(card)}`);
  const found = await all(client.sendMessageStream(message([text("Rivers?")])));
  const kinds = found.map(kindOf);
  expect(kinds[0] === "task" && kinds[1] === WORKING && kinds.at(-1) === COMPLETED, `kinds ${kinds}`);
  expect(kinds.filter((kind) => kind === "chunk").length === 3, `one chunk per token: ${kinds}`);
  const task = found[0].payload.value;
  expect(textOf(task.history[0].parts) === "Rivers?", "the task's history has the message");
  const said = found
    .filter((event) => event.payload.$case === "artifactUpdate")
    .map((event) => textOf(event.payload.value.artifact.parts))
    .join("");
  expect(said === "Rivers are long.", `text ${said}`);
  const usage = found.at(-1).payload.value.metadata?.miniagents?.usage;
  expect(usage && usage.outputTokens > 0, `usage ${JSON.stringify(usage)}`);
  const again = await client.getTask({ tenant: "", id: task.id, historyLength: undefined });
  expect(textOf(again.artifacts[0].parts) === "Rivers are long.", "getTask: the whole text");
});

await check("nested tool streams", async () => {
  const client = await clientOf("tools");
  const found = await all(client.sendMessageStream(message([text("Weather?")])));
  const firsts = found
    .filter((event) => kindOf(event) === "first")
    .map((event) => event.payload.value.artifact.metadata.miniagents);
  const kinds = firsts.map((one) => `${one.kind}:${one.toolName ?? ""}`);
  expect(JSON.stringify(kinds) === JSON.stringify(["tool-call:weather", "tool-result:weather", "text:"]), `kinds ${kinds}`);
  expect(firsts[0].toolCallId === firsts[1].toolCallId, "the result names its call");
  expect(kindOf(found.at(-1)) === COMPLETED, "completed");
});

await check("approval asked, then decided by the next message", async () => {
  const client = await clientOf("approve");
  const first = await all(client.sendMessageStream(message([text("Delete notes.md")])));
  const asked = first.at(-1).payload.value;
  expect(asked.status.state === 6, `input required: ${JSON.stringify(asked.status)}`); // INPUT_REQUIRED
  const requests = asked.status.message.parts
    .filter((part) => part.content?.$case === "data")
    .map((part) => part.content.value.toolApprovalRequest);
  expect(requests.length === 1 && requests[0].toolName === "delete_file", `requests ${JSON.stringify(requests)}`);
  const answer = data({ toolCallId: requests[0].toolCallId, approved: true, arguments: { path: "old.md" } });
  const second = await all(client.sendMessageStream(message([answer], asked.taskId)));
  const kinds = second.map(kindOf);
  expect(kinds[0] === "task" && kinds[1] === WORKING && kinds.at(-1) === COMPLETED, `kinds ${kinds}`);
  const result = second
    .filter((event) => event.payload.$case === "artifactUpdate")
    .map((event) => textOf(event.payload.value.artifact.parts))
    .join("");
  expect(result === "Deleted old.mdDone.", `result ${result}`);
});

await check("cancel a working task", async () => {
  const client = await clientOf("gated");
  const stream = client.sendMessageStream(message([text("Hi")]));
  const task = (await stream.next()).value.payload.value;
  await control("token", { token: "Half " });
  let event;
  do {
    event = (await stream.next()).value;
    events += 1;
  } while (kindOf(event) !== "chunk");
  const cancelled = await client.cancelTask({ tenant: "", id: task.id, metadata: undefined });
  expect(cancelled.status.state === 5, `canceled: ${JSON.stringify(cancelled.status)}`); // CANCELED
  const rest = await all(stream);
  expect(kindOf(rest.at(-1)) === "status 5", `the stream ends canceled: ${rest.map(kindOf)}`);
  try {
    await client.cancelTask({ tenant: "", id: task.id, metadata: undefined });
    problem("a second cancel was taken");
  } catch (error) {
    expect(error instanceof TaskNotCancelableError, `not cancelable: ${error?.constructor?.name}`);
  }
  await control("idle/gated");
});

await check("a stream cut, then followed again: nothing lost", async () => {
  const client = await clientOf("gated");
  const cut = new AbortController();
  const stream = client.sendMessageStream(message([text("Hi")]), { signal: cut.signal });
  const task = (await stream.next()).value.payload.value;
  await control("token", { token: "one " });
  let event;
  do {
    event = (await stream.next()).value;
    events += 1;
  } while (kindOf(event) !== "chunk");
  cut.abort(); // the client goes away; the task goes on
  await stream.return?.();
  await control("token", { token: "two " });
  await control("reached/gated", { task: task.id, events: 4 }); // working, first, "one ", "two "
  const again = client.resubscribeTask({ tenant: "", id: task.id });
  const snapshot = (await again.next()).value;
  events += 1;
  expect(snapshot.payload.$case === "task", `the task first: ${snapshot.payload.$case}`);
  const had = textOf(snapshot.payload.value.artifacts[0].parts);
  expect(had === "one two ", `the snapshot's text: ${had}`);
  await control("token", { token: "three." });
  await control("token", { token: null });
  const rest = await all(again);
  const said = rest
    .filter((one) => one.payload.$case === "artifactUpdate")
    .map((one) => textOf(one.payload.value.artifact.parts))
    .join("");
  expect(had + said === "one two three.", `the text: ${had + said}`);
  expect(kindOf(rest.at(-1)) === COMPLETED, "completed");
});

await check("an unknown task", async () => {
  const client = await clientOf("plain");
  try {
    await client.getTask({ tenant: "", id: "no-such-task", historyLength: undefined });
    problem("an unknown task was found");
  } catch (error) {
    expect(error instanceof TaskNotFoundError, `not found: ${error?.constructor?.name}`);
  }
});

console.log(JSON.stringify({ checked, problems, events }));
