// SPDX-License-Identifier: MIT
// An ERC-721 whose token URIs the test sets at mint (OpenZeppelin's ERC721URIStorage).
pragma solidity ^0.8.20;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ERC721URIStorage} from "@openzeppelin/contracts/token/ERC721/extensions/ERC721URIStorage.sol";

contract TestNFT is ERC721URIStorage {
    constructor() ERC721("ownvault test", "OVT") {}

    function mint(address to, uint256 tokenId, string calldata tokenUri) external {
        _mint(to, tokenId);
        _setTokenURI(tokenId, tokenUri);
    }
}
