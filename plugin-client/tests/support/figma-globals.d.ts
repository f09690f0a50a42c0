// The globals the Figma sandbox provides to src/main/code.ts. The test
// tsconfig uses the global-free plugin-api.d.ts (it clashes with the DOM lib),
// so they are declared here; tests stub them with vi.stubGlobal.
declare global {
  var figma: PluginAPI;
  var __html__: string;
}
export {};
