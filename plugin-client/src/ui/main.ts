// UI entry point (bundled into dist/ui.html).
import './styles.css';
import { RequestClient } from '../shared/rpc';
import { App } from './app';
import { figmaMessagePort } from './bridge';

const root = document.getElementById('app');
if (!root) throw new Error('missing #app');
const app = new App(root, new RequestClient(figmaMessagePort()));
app.start().catch((error: unknown) => {
  console.error(error);
  app.showError(error instanceof Error ? error.message : String(error));
});
