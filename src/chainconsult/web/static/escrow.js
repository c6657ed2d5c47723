// Escrow wallet steps: send the transactions the page lists (from the API's services) through
// the browser's injected wallet (EIP-1193, window.ethereum), one after the other. Without a
// wallet the page already shows them as data to send by other means.
"use strict";

(() => {
  const step = document.getElementById("wallet-step");
  const actions = document.getElementById("wallet-actions");
  const button = document.getElementById("wallet-send");
  const status = document.getElementById("wallet-status");
  if (!step || !actions || !button || !status) return;
  const wallet = window.ethereum;
  if (!wallet || typeof wallet.request !== "function") return;
  const { chain_id: chainId, transactions } = JSON.parse(step.dataset.walletStep);
  document.getElementById("wallet-none")?.setAttribute("hidden", "");
  actions.hidden = false;

  const say = (text) => {
    status.textContent = text;
  };
  const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const mined = async (hash) => {
    for (;;) {
      const receipt = await wallet.request({ method: "eth_getTransactionReceipt", params: [hash] });
      if (receipt) return receipt;
      await pause(1500);
    }
  };

  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const [from] = await wallet.request({ method: "eth_requestAccounts" });
      const current = parseInt(await wallet.request({ method: "eth_chainId" }), 16);
      if (current !== chainId) {
        say(`Switch your wallet to chain ${chainId} (it is on ${current}) and try again.`);
        return;
      }
      for (const [index, tx] of transactions.entries()) {
        say(`Sending transaction ${index + 1} of ${transactions.length}…`);
        const value = "0x" + BigInt(tx.value).toString(16);
        const hash = await wallet.request({
          method: "eth_sendTransaction",
          params: [{ from, to: tx.to, data: tx.data, value }],
        });
        say(`Transaction ${index + 1} of ${transactions.length} sent (${hash}); waiting for it to be mined…`);
        // The next one may need this one on chain (a deposit spends what approve allowed):
        // the wallet estimates its gas against the chain as it is.
        const receipt = await mined(hash);
        if (receipt.status !== "0x1") {
          say(`Transaction ${index + 1} (${hash}) failed on chain; nothing after it was sent.`);
          return;
        }
      }
      say(
        `All ${transactions.length} transaction(s) sent. The milestones change once the ` +
          "chain has confirmed them: reload this page in a minute.",
      );
    } catch (error) {
      say(`The wallet did not send the transactions: ${error?.message || error}`);
    } finally {
      button.disabled = false;
    }
  });
})();
