// A GhubAi worker written with Microsoft's own SignalR client (@microsoft/signalr).
//
// tests/test_conformance.py runs it against the test hub: if the official client
// can negotiate, hand-shake, register, receive a hub-initiated RequestOpenAI,
// stream chunks back and survive a server Close with allowReconnect, then the test
// hub speaks real SignalR. Every event is one JSON line on stdout; a line "stop" on
// stdin stops the connection cleanly.
//
// usage: node client.mjs HUB_URL TOKEN MACHINE MODEL
import * as readline from "node:readline";
import * as signalR from "@microsoft/signalr";

const [hubUrl, token, machineName, model] = process.argv.slice(2);
const emit = (event, extra = {}) => process.stdout.write(JSON.stringify({ event, ...extra }) + "\n");

const connection = new signalR.HubConnectionBuilder()
  .withUrl(hubUrl, {
    accessTokenFactory: () => token,
    transport: signalR.HttpTransportType.WebSockets,
  })
  .withAutomaticReconnect([0, 200, 500, 1000, 2000])
  .configureLogging(signalR.LogLevel.Warning)
  .build();
// Short timeouts so that a broken hub makes the client fail in seconds, not 30 s.
connection.serverTimeoutInMilliseconds = 4000;
connection.keepAliveIntervalInMilliseconds = 1000;

const register = () =>
  connection.invoke("RegisterNode", { machineName, availableModels: [model] });

connection.on("Registered", () => emit("registered"));

connection.on("RequestOpenAI", async (request) => {
  emit("request", { request });
  const body = JSON.parse(request.requestBody);
  const send = (tokenFragment, isFinal) =>
    connection.send("StreamInferenceResponse", { requestId: request.requestId, tokenFragment, isFinal });
  if (body.stream) {
    for (const word of ["Hello", " from", " node"]) {
      const chunk = { choices: [{ index: 0, delta: { content: word }, finish_reason: null }] };
      await send(`data: ${JSON.stringify(chunk)}\n\n`, false);
    }
    await send("", true);
  } else {
    const whole = JSON.stringify({
      object: "chat.completion",
      model: request.model,
      choices: [{ index: 0, message: { role: "assistant", content: "Hello from node" }, finish_reason: "stop" }],
    });
    // Two fragments split mid-document: the hub must concatenate before parsing.
    const cut = Math.floor(whole.length / 2);
    await send(whole.slice(0, cut), false);
    await send(whole.slice(cut), false);
    await send("", true);
  }
});

connection.onreconnecting((error) => emit("reconnecting", { error: String(error) }));
connection.onreconnected(async (connectionId) => {
  emit("reconnected", { connectionId });
  try {
    await register();
  } catch (error) {
    emit("failed", { stage: "re-register", error: String(error) });
  }
});
connection.onclose((error) => {
  emit("closed", { error: error ? String(error) : null });
  process.exit(stopping ? 0 : 1);
});

let stopping = false;
readline.createInterface({ input: process.stdin }).on("line", async (line) => {
  if (line.trim() === "stop") {
    stopping = true;
    await connection.stop();
  }
});

try {
  await connection.start();
  emit("connected", { connectionId: connection.connectionId });
  await register();
  emit("register-completed");
} catch (error) {
  emit("failed", { stage: "start", error: String(error) });
  process.exit(1);
}
