// jsonc.mjs: reads the JSONC dialect of wrangler configs and rollout files
// (// and /* */ comments, trailing commas) for the config tests. Comment
// markers and commas inside strings are string content.
import { readFileSync } from "node:fs";

// Calls onOther(i) for each character outside strings and copies strings
// verbatim; returns the text built by the callbacks.
function scan(text, name, onOther) {
	let out = "";
	let i = 0;
	while (i < text.length) {
		if (text[i] === '"') {
			let j = i + 1;
			while (j < text.length && text[j] !== '"') {
				j += text[j] === "\\" ? 2 : 1;
			}
			if (j >= text.length) {
				throw new SyntaxError(`${name}: unterminated string at offset ${i}`);
			}
			out += text.slice(i, j + 1);
			i = j + 1;
			continue;
		}
		const [emit, next] = onOther(i);
		out += emit;
		i = next;
	}
	return out;
}

export function parseJsonc(text, name = "<jsonc>") {
	const noComments = scan(text, name, (i) => {
		if (text.startsWith("//", i)) {
			const end = text.indexOf("\n", i);
			return ["", end < 0 ? text.length : end];
		}
		if (text.startsWith("/*", i)) {
			const end = text.indexOf("*/", i + 2);
			if (end < 0) {
				throw new SyntaxError(`${name}: unterminated block comment at offset ${i}`);
			}
			return [" ", end + 2];
		}
		return [text[i], i + 1];
	});
	const json = scan(noComments, name, (i) => {
		if (noComments[i] === ",") {
			let j = i + 1;
			while (j < noComments.length && /\s/.test(noComments[j])) {
				j++;
			}
			if (noComments[j] === "}" || noComments[j] === "]") {
				return ["", i + 1];
			}
		}
		return [noComments[i], i + 1];
	});
	try {
		return JSON.parse(json);
	} catch (e) {
		throw new SyntaxError(`${name}: ${e.message}`);
	}
}

export function readJsonc(path) {
	return parseJsonc(readFileSync(path, "utf8"), path);
}
