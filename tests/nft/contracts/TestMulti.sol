// SPDX-License-Identifier: MIT
// An ERC-1155 with one URI template for every id (the `{id}` substitution of EIP-1155).
pragma solidity ^0.8.20;

import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";

contract TestMulti is ERC1155 {
    constructor(string memory template) ERC1155(template) {}

    function mint(address to, uint256 id, uint256 amount) external {
        _mint(to, id, amount, "");
    }
}
