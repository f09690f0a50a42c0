// Figma main-thread entry: shows the UI and answers its requests.
import type { MainToUi } from '../shared/protocol';
import { routeMessage } from './router';

const UI_SIZE = { width: 380, height: 620 };

function post(message: MainToUi): void {
  figma.ui.postMessage(message);
}

figma.showUI(__html__, { ...UI_SIZE, themeColors: true, title: 'AI Jobs' });

figma.ui.onmessage = (message: unknown) => {
  void routeMessage(figma, message).then((response) => {
    if (response) post(response);
  });
};

const postSelection = (): void =>
  post({ type: 'event', event: 'selection-changed', selectionCount: figma.currentPage.selection.length });
figma.on('selectionchange', postSelection);
postSelection();
