// Drops the plugin UI's open WebSockets through the Chromium DevTools
// Protocol, with no hook in the shipped UI: Runtime.queryObjects finds every
// WebSocket in the frame's heap and Runtime.callFunctionOn closes them.
// (Network.emulateNetworkConditions{offline} alone does not close sockets
// that are already open; combine the two to keep the UI from reconnecting.)
import type { CDPSession, Frame, Page } from 'playwright-core';

interface ExecutionContextCreated {
  context: { id: number; auxData?: { frameId?: string; isDefault?: boolean } };
}

interface FrameTree {
  frame: { id: string; url: string };
  childFrames?: FrameTree[];
}

/** A CDP session and execution context in which `frame`'s own globals live. */
async function frameRuntime(page: Page, frame: Frame): Promise<{ session: CDPSession; contextId?: number }> {
  try {
    // An out-of-process iframe has its own target; its default context is the frame's.
    return { session: await page.context().newCDPSession(frame) };
  } catch {
    // Same process as the page: find the frame's default execution context.
    const session = await page.context().newCDPSession(page);
    const contexts: ExecutionContextCreated['context'][] = [];
    session.on('Runtime.executionContextCreated', (event: ExecutionContextCreated) => contexts.push(event.context));
    await session.send('Runtime.enable');
    const { frameTree } = (await session.send('Page.getFrameTree')) as { frameTree: FrameTree };
    const child = frameTree.childFrames?.[0];
    if (!child) throw new Error('the page has no iframe');
    const context = contexts.find((c) => c.auxData?.frameId === child.frame.id && c.auxData.isDefault);
    if (!context) throw new Error(`no execution context for frame ${child.frame.id}`);
    return { session, contextId: context.id };
  }
}

/** Closes every open WebSocket of `frame`; returns how many were open. */
export async function dropWebSockets(page: Page, frame: Frame): Promise<number> {
  const { session, contextId } = await frameRuntime(page, frame);
  try {
    const proto = (await session.send('Runtime.evaluate', {
      expression: 'WebSocket.prototype',
      ...(contextId === undefined ? {} : { contextId }),
    })) as { result: { objectId?: string } };
    if (!proto.result.objectId) throw new Error('WebSocket.prototype not found');
    const found = (await session.send('Runtime.queryObjects', { prototypeObjectId: proto.result.objectId })) as {
      objects: { objectId?: string };
    };
    if (!found.objects.objectId) throw new Error('Runtime.queryObjects returned nothing');
    const closed = (await session.send('Runtime.callFunctionOn', {
      objectId: found.objects.objectId,
      functionDeclaration:
        'function () { let n = 0; for (const ws of this) { if (ws.readyState === 0 || ws.readyState === 1) { ws.close(4000, "dropped by test"); n += 1; } } return n; }',
      returnByValue: true,
    })) as { result: { value?: number } };
    return closed.result.value ?? 0;
  } finally {
    await session.detach().catch(() => undefined);
  }
}
