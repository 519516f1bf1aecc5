// One process per request: answers the request named in argv and exits (the CGI/container baseline).
import { hello, tiny } from "./hello-handler.mjs";

const [which, url] = process.argv.slice(2);
process.stdout.write(JSON.stringify(which === "tiny" ? tiny() : hello(url)));
