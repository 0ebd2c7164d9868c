/** Types of bundle.js (plain JavaScript: scripts/build.mjs runs it under plain node). */
export declare const CONSOLE_DIST: string;
export declare const CONSOLE_MANIFEST: string;
export declare const CONSOLE_MANIFEST_VERSION: number;
export declare const CONSOLE_FILES: Readonly<Record<'index.html' | 'app.js' | 'style.css' | 'favicon.svg', string>>;
export declare function buildConsole(root: string, esbuild: typeof import('esbuild')): Promise<{ files: Map<string, Buffer>; inputs: string[] }>;
export declare function readBuiltConsole(root: string): Map<string, Buffer> | undefined;
