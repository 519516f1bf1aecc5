// One worker thread per request: answers the request in workerData and exits.
import { parentPort, workerData } from "node:worker_threads";
import { hello, tiny } from "./hello-handler.mjs";

parentPort.postMessage(workerData.which === "tiny" ? tiny() : hello(workerData.url));
